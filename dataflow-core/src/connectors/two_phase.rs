//! Two-phase-commit sinks (being written).
