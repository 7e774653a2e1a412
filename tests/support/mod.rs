//! Helpers shared by the integration tests. Each test file uses only part
//! of them.
#![allow(dead_code)]

pub mod data;
