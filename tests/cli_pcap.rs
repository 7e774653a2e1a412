//! `sniff --read` and capture inputs, end to end.
