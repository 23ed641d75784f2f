//! pool kernels (being written).
