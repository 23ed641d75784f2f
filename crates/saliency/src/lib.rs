//! saliency (being written).
