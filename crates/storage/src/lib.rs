//! Cairn's segment storage engine (work in progress; see the module docs).
#![warn(missing_docs)]

pub mod batch;
mod config;
mod error;

pub use config::LogConfig;
pub use error::{BatchError, Result, StorageError};
