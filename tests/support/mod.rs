//! Helpers shared by the integration tests. Each test file uses only part
//! of them.
#![allow(dead_code)]

pub mod browser;
pub mod captures;
pub mod data;
pub mod flood;
pub mod frames;
pub mod kafka;
pub mod lab;
pub mod netns;
pub mod nfstream;
pub mod process;
pub mod raw;
pub mod report;
pub mod root;
pub mod tmpfs;
