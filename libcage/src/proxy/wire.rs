//! The protocol between `cage-proxy` (in a cage) and `cage-proxyd` (on the
//! host), over a `SOCK_SEQPACKET` unix socket. Every message is
//! `u32 length (LE) | u8 kind | body`, strings as `u32 length | bytes`.
//!
//! - client → daemon, first: `Request` (with the caller's stdin, stdout and
//!   stderr attached as `SCM_RIGHTS`), later any number of `Signal`;
//! - daemon → client: one `Exit`, `Killed` or `Refused`, then EOF.
//!
//! The caller's identity is never in a message: the daemon takes it from
//! `SO_PEERCRED`.

/// Largest message accepted (argv and cwd together).
pub const MAX_MESSAGE: usize = 128 * 1024;
/// Most argv words accepted.
pub const MAX_ARGS: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// `command`: the path the client runs as inside the cage (from
    /// `/proc/self/exe`); `args`: argv without argv\[0\]; `cwd` as seen in
    /// the cage.
    Request {
        command: String,
        args: Vec<String>,
        cwd: String,
    },
    /// Forward this signal to the command.
    Signal(i32),
    /// The command exited with this status.
    Exit(i32),
    /// The command was killed by this signal.
    Killed(i32),
    /// Not run: why.
    Refused(String),
}

const REQUEST: u8 = 1;
const SIGNAL: u8 = 2;
const EXIT: u8 = 3;
const KILLED: u8 = 4;
const REFUSED: u8 = 5;

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

impl Message {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; 4];
        match self {
            Message::Request { command, args, cwd } => {
                b.push(REQUEST);
                put_str(&mut b, command);
                put_str(&mut b, cwd);
                b.extend_from_slice(&(args.len() as u32).to_le_bytes());
                for a in args {
                    put_str(&mut b, a);
                }
            }
            Message::Signal(s) => {
                b.push(SIGNAL);
                b.extend_from_slice(&s.to_le_bytes());
            }
            Message::Exit(s) => {
                b.push(EXIT);
                b.extend_from_slice(&s.to_le_bytes());
            }
            Message::Killed(s) => {
                b.push(KILLED);
                b.extend_from_slice(&s.to_le_bytes());
            }
            Message::Refused(m) => {
                b.push(REFUSED);
                put_str(&mut b, m);
            }
        }
        let len = (b.len() - 4) as u32;
        b[..4].copy_from_slice(&len.to_le_bytes());
        b
    }

    pub fn decode(buf: &[u8]) -> Result<Message, String> {
        let mut r = Reader { buf, pos: 0 };
        let len = r.u32()? as usize;
        if len != buf.len() - 4 {
            return Err(format!(
                "length {len} does not match the message ({} bytes)",
                buf.len() - 4
            ));
        }
        let kind = r.u8()?;
        let m = match kind {
            REQUEST => {
                let command = r.string()?;
                let cwd = r.string()?;
                let n = r.u32()? as usize;
                if n > MAX_ARGS {
                    return Err(format!("{n} arguments: at most {MAX_ARGS}"));
                }
                let mut args = Vec::with_capacity(n);
                for _ in 0..n {
                    args.push(r.string()?);
                }
                Message::Request { command, args, cwd }
            }
            SIGNAL => Message::Signal(r.i32()?),
            EXIT => Message::Exit(r.i32()?),
            KILLED => Message::Killed(r.i32()?),
            REFUSED => Message::Refused(r.string()?),
            k => return Err(format!("unknown message kind {k}")),
        };
        if r.pos != buf.len() {
            return Err("trailing bytes after the message".into());
        }
        Ok(m)
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| "truncated message".to_string())?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn i32(&mut self) -> Result<i32, String> {
        Ok(i32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.u32()? as usize;
        let b = self.take(n)?;
        if b.contains(&0) {
            return Err("NUL byte in a string".into());
        }
        String::from_utf8(b.to_vec()).map_err(|_| "string is not UTF-8".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let ms = [
            Message::Request {
                command: "/usr/bin/crontab".into(),
                args: vec!["-l".into(), "".into()],
                cwd: "/home/alice".into(),
            },
            Message::Signal(2),
            Message::Exit(1),
            Message::Killed(15),
            Message::Refused("no".into()),
        ];
        for m in ms {
            assert_eq!(Message::decode(&m.encode()).unwrap(), m);
        }
    }

    #[test]
    fn rejects_bad_input() {
        let mut b = Message::Exit(0).encode();
        b.push(0);
        assert!(Message::decode(&b).is_err());
        assert_eq!(
            Message::decode(&[1, 0, 0, 0]).unwrap_err(),
            "length 1 does not match the message (0 bytes)"
        );
        let mut b = Message::Request {
            command: "a".into(),
            args: vec![],
            cwd: "/".into(),
        }
        .encode();
        b.truncate(9);
        b[..4].copy_from_slice(&5u32.to_le_bytes());
        assert_eq!(Message::decode(&b).unwrap_err(), "truncated message");
        assert!(Message::decode(&[0u8; 0]).is_err());
        let mut big = vec![9, 0, 0, 0, REQUEST, 0, 0, 0, 0];
        big[0] = 5;
        big.truncate(9);
        assert!(Message::decode(&big).is_err());
    }
}
