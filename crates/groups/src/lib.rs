//! Cairn's consumer groups (placeholder: the coordinator lands in the next commits).
#![warn(missing_docs)]
