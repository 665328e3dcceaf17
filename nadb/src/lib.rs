//! nadb
