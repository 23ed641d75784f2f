//! tape (being written).
