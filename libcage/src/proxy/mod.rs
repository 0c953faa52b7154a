//! proxyexec: the configured commands a caged user runs outside the cage
//! through `cage-proxyd` (see README "Executing by proxy").
//!
//! - [`commands`] parses `proxy.commands` / `custom.proxy.commands`;
//! - [`filter`] parses `filters/<alias>.json` and checks an argv against it
//!   (full short-option clustering: `-vf x` is `-v -f x`);
//! - [`wire`] is the length-prefixed protocol between the client in the
//!   skeleton (`cage-proxy`) and the daemon.

pub mod commands;
pub mod filter;
pub mod io;
pub mod wire;

/// The daemon's socket directory on the host, bound read-only (nosuid,
/// nodev) at the same path into every cage.
pub const SOCKET_DIR: &str = "/run/cage-proxy";
/// The daemon's listening socket (SOCK_SEQPACKET).
pub const SOCKET: &str = "/run/cage-proxy/socket";
/// The client program copied into the skeleton under each proxied path.
pub const DEFAULT_CLIENT: &str = "/usr/lib/cage/cage-proxy";
