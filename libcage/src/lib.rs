//! cage core: everything `pam_cage.so`, `libcage.so` and `cage-admin` share.
//!
//! The layers, top to bottom:
//! - [`config`] parses text into typed values that remember `file:line`;
//! - [`policy`] and [`identity`] decide who is caged and who they are (NSS,
//!   resolved before any namespace change);
//! - [`plan`] turns config + identity into a [`plan::Plan`], a pure value;
//! - [`apply`] is the one module that turns a plan into mounts;
//! - [`cage`] builds, records, verifies and joins cages (the process model);
//! - [`sys`] holds the `unsafe` FFI, each block with a SAFETY comment.

pub mod apply;
pub mod cage;
pub mod cgroup;
pub mod config;
pub mod error;
pub mod identity;
pub mod log;
pub mod panic_guard;
pub mod paths;
pub mod plan;
pub mod policy;
pub mod proxy;
pub mod skeleton;
pub mod sys;
pub mod timing;

pub use error::Error;
