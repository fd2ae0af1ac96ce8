//! Windows: assigners, triggers and window functions.
//!
//! Empty for now: windows are built on event time and keyed state and land
//! with the event-time work. The folder exists so that the layout of the
//! crate follows the architecture from the start.
