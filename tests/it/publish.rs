//! Publishing through kiban run, with faults.
