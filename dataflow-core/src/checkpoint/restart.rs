//! Restart strategies (being written).
