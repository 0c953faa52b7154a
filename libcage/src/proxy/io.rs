//! Sending and receiving [`Message`]s (with descriptors) over the
//! `SOCK_SEQPACKET` socket: one message per packet.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

use super::wire::{Message, MAX_MESSAGE};

/// Sends `m`, with `fds` attached (`SCM_RIGHTS`) when not empty.
pub fn send(sock: BorrowedFd<'_>, m: &Message, fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let bytes = m.encode();
    if bytes.len() > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("message of {} bytes: at most {MAX_MESSAGE}", bytes.len()),
        ));
    }
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(3))];
    let mut anc = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !anc.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "too many descriptors",
        ));
    }
    let n = sendmsg(
        sock,
        &[io::IoSlice::new(&bytes)],
        &mut anc,
        SendFlags::NOSIGNAL,
    )?;
    if n != bytes.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "short send"));
    }
    Ok(())
}

/// Receives one message and the descriptors that came with it (at most
/// three; more, or a truncated packet, is an error). `Ok(None)` at EOF.
pub fn recv(sock: impl AsFd) -> io::Result<Option<(Message, Vec<OwnedFd>)>> {
    let mut buf = vec![0u8; MAX_MESSAGE + 1];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(3))];
    let mut anc = RecvAncillaryBuffer::new(&mut space);
    let r = recvmsg(
        &sock,
        &mut [io::IoSliceMut::new(&mut buf)],
        &mut anc,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut fds = Vec::new();
    for m in anc.drain() {
        if let RecvAncillaryMessage::ScmRights(it) = m {
            fds.extend(it);
        }
    }
    if r.flags.contains(rustix::net::ReturnFlags::CTRUNC)
        || r.flags.contains(rustix::net::ReturnFlags::TRUNC)
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "message too large",
        ));
    }
    if r.bytes == 0 && fds.is_empty() {
        return Ok(None);
    }
    let m = Message::decode(&buf[..r.bytes])
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(Some((m, fds)))
}
