//! The framed byte stream of an upgraded `exec` connection.
//!
//! After `101 Switching Protocols` (`Upgrade: tether-stream/1`) both sides
//! exchange frames:
//!
//! ```text
//! kind: u8 | length: u32 big-endian | payload: length bytes
//! ```
//!
//! | kind | name | from | payload |
//! |---|---|---|---|
//! | 1 | stdin | client | bytes for the command's stdin |
//! | 2 | stdout | daemon | bytes the command wrote to stdout |
//! | 3 | stderr | daemon | bytes the command wrote to stderr |
//! | 4 | eof | client | empty: stdin is finished |
//! | 5 | signal | client | a signal name without `SIG` (`INT`, `TERM`, ...) |
//! | 6 | resize | client | cols: u32, rows: u32 (big-endian) |
//! | 7 | exit | daemon | JSON [`ExitInfo`]; the last frame of a stream |
//! | 8 | error | daemon | JSON [`ApiError`]; the stream failed, last frame |
//! | 9 | notice | daemon | JSON [`Notice`]: for the person, before any output |
//!
//! A payload is at most [`MAX_PAYLOAD`] bytes; a longer length, an unknown
//! kind or a malformed payload ends the stream with a [`FrameError`]. Data is
//! sent in chunks of at most [`CHUNK`] bytes so that neither side buffers much.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};
use tokio_util::codec::{Decoder, Encoder};

use crate::error::ApiError;

/// Largest payload either side accepts.
pub const MAX_PAYLOAD: usize = 1 << 20;

/// Largest data payload either side sends.
pub const CHUNK: usize = 32 * 1024;

const HEADER: usize = 5;

/// How a remote command ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitInfo {
    /// The exit status, when the command exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u32>,
    /// The signal name (without `SIG`), when a signal killed the command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    #[serde(default)]
    pub core_dumped: bool,
    /// The daemon ended the command because its `timeout_secs` passed.
    #[serde(default)]
    pub timed_out: bool,
}

impl ExitInfo {
    /// The exit code `tether` leaves with, as ssh does: the status itself, or
    /// 128 + the signal number, or 255 when the server reported neither;
    /// 124 (as timeout(1)) when the daemon ended it for its time limit.
    pub fn exit_code(&self) -> i32 {
        if self.timed_out {
            return 124;
        }
        match (&self.status, &self.signal) {
            (Some(status), _) => (*status & 0xff) as i32,
            (None, Some(signal)) => 128 + signal_number(signal).unwrap_or(127),
            (None, None) => 255,
        }
    }
}

/// Linux signal numbers of the names SSH servers send (RFC 4254 6.10).
pub fn signal_number(name: &str) -> Option<i32> {
    Some(match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "ABRT" => 6,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        _ => return None,
    })
}

/// What a [`Frame::Notice`] tells the person at the terminal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notice {
    /// The server's pre-login banner (a legal notice, often): shown for a
    /// shell, never mixed into a command's output. Server text: the CLI
    /// escapes it.
    Banner { text: String },
    /// The server refused a terminal (`PermitTTY no`); the session runs
    /// without one, and the CLI leaves raw mode.
    NoTerminal,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Stdin(Bytes),
    Stdout(Bytes),
    Stderr(Bytes),
    Eof,
    Signal(String),
    Resize { cols: u32, rows: u32 },
    Exit(ExitInfo),
    Error(ApiError),
    Notice(Notice),
}

// ApiError holds a serde_json::Value, which has no Eq; frames compare by code
// and message in tests only.
impl PartialEq for ApiError {
    fn eq(&self, other: &Self) -> bool {
        self.code == other.code && self.message == other.message && self.details == other.details
    }
}
impl Eq for ApiError {}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("unknown frame kind {0}")]
    UnknownKind(u8),
    #[error("frame of {0} bytes is over the limit of {MAX_PAYLOAD}")]
    TooLarge(usize),
    #[error("malformed {0} frame")]
    Malformed(&'static str),
    #[error("stream ended inside a frame")]
    Truncated,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Frame {
    fn kind(&self) -> u8 {
        match self {
            Frame::Stdin(_) => 1,
            Frame::Stdout(_) => 2,
            Frame::Stderr(_) => 3,
            Frame::Eof => 4,
            Frame::Signal(_) => 5,
            Frame::Resize { .. } => 6,
            Frame::Exit(_) => 7,
            Frame::Error(_) => 8,
            Frame::Notice(_) => 9,
        }
    }

    /// Appends the encoded frame to `out`.
    pub fn encode(&self, out: &mut impl BufMut) {
        let json;
        let resize;
        let payload: &[u8] = match self {
            Frame::Stdin(data) | Frame::Stdout(data) | Frame::Stderr(data) => data,
            Frame::Eof => &[],
            Frame::Signal(name) => name.as_bytes(),
            Frame::Resize { cols, rows } => {
                let mut buf = [0u8; 8];
                buf[..4].copy_from_slice(&cols.to_be_bytes());
                buf[4..].copy_from_slice(&rows.to_be_bytes());
                resize = buf;
                &resize
            }
            Frame::Exit(info) => {
                json = serde_json::to_vec(info).unwrap_or_default();
                &json
            }
            Frame::Error(error) => {
                json = serde_json::to_vec(error).unwrap_or_default();
                &json
            }
            Frame::Notice(notice) => {
                json = serde_json::to_vec(notice).unwrap_or_default();
                &json
            }
        };
        put_frame(out, self.kind(), payload);
    }

    /// Appends `data` as stdout (or stderr) frames of at most [`CHUNK`]
    /// bytes, copied once.
    pub fn encode_output(data: &[u8], stderr: bool, out: &mut impl BufMut) {
        let kind = if stderr {
            Frame::Stderr(Bytes::new())
        } else {
            Frame::Stdout(Bytes::new())
        }
        .kind();
        for chunk in data.chunks(CHUNK) {
            put_frame(out, kind, chunk);
        }
    }

    fn from_parts(kind: u8, payload: &[u8]) -> Result<Frame, FrameError> {
        Ok(match kind {
            1 => Frame::Stdin(Bytes::copy_from_slice(payload)),
            2 => Frame::Stdout(Bytes::copy_from_slice(payload)),
            3 => Frame::Stderr(Bytes::copy_from_slice(payload)),
            4 if payload.is_empty() => Frame::Eof,
            4 => return Err(FrameError::Malformed("eof")),
            5 => {
                let name = std::str::from_utf8(payload)
                    .ok()
                    .filter(|n| valid_signal_name(n))
                    .ok_or(FrameError::Malformed("signal"))?;
                Frame::Signal(name.to_owned())
            }
            6 => {
                let bytes: [u8; 8] = payload
                    .try_into()
                    .map_err(|_| FrameError::Malformed("resize"))?;
                let (cols, rows) = bytes.split_at(4);
                Frame::Resize {
                    cols: u32::from_be_bytes(cols.try_into().unwrap_or_default()),
                    rows: u32::from_be_bytes(rows.try_into().unwrap_or_default()),
                }
            }
            7 => Frame::Exit(
                serde_json::from_slice(payload).map_err(|_| FrameError::Malformed("exit"))?,
            ),
            8 => Frame::Error(
                serde_json::from_slice(payload).map_err(|_| FrameError::Malformed("error"))?,
            ),
            9 => Frame::Notice(
                serde_json::from_slice(payload).map_err(|_| FrameError::Malformed("notice"))?,
            ),
            other => return Err(FrameError::UnknownKind(other)),
        })
    }
}

/// A signal name as RFC 4254 sends it: 1 to 16 upper-case letters or digits.
pub fn valid_signal_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 16
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// Decodes one frame from the front of `buf`: `Ok(None)` when more bytes are
/// needed, else the frame and how many bytes it used. Pure, for fuzzing.
pub fn decode(buf: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
    let Some(header) = buf.get(..HEADER) else {
        return Ok(None);
    };
    let kind = header[0];
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if len > MAX_PAYLOAD {
        return Err(FrameError::TooLarge(len));
    }
    if !(1..=9).contains(&kind) {
        return Err(FrameError::UnknownKind(kind));
    }
    let Some(payload) = buf.get(HEADER..HEADER + len) else {
        return Ok(None);
    };
    Ok(Some((Frame::from_parts(kind, payload)?, HEADER + len)))
}

/// Frames on a byte stream, for tokio-util's `FramedRead` and `FramedWrite`:
/// reading is cancel-safe (a partial frame waits in the buffer), so a
/// frame stream can be one arm of a `select!`.
#[derive(Debug, Default, Clone, Copy)]
pub struct FrameCodec;

impl Decoder for FrameCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        match decode(src)? {
            Some((frame, used)) => {
                src.advance(used);
                Ok(Some(frame))
            }
            None => Ok(None),
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(FrameError::Truncated),
        }
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = std::io::Error;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> std::io::Result<()> {
        frame.encode(dst);
        Ok(())
    }
}

/// Appends one frame: its kind, its length (big-endian) and its payload.
fn put_frame(out: &mut impl BufMut, kind: u8, payload: &[u8]) {
    out.put_u8(kind);
    out.put_u32(payload.len() as u32);
    out.put_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use proptest::prelude::*;

    #[test]
    fn output_is_framed_in_chunks() {
        let data: Vec<u8> = (0..CHUNK * 2 + 5).map(|i| i as u8).collect();
        let mut buf = Vec::new();
        Frame::encode_output(&data, true, &mut buf);
        Frame::encode_output(b"", false, &mut buf);
        let mut rest = &buf[..];
        let mut frames = Vec::new();
        while let Some((frame, used)) = decode(rest).unwrap() {
            frames.push(frame);
            rest = &rest[used..];
        }
        assert!(rest.is_empty());
        let lens: Vec<usize> = frames
            .iter()
            .map(|f| match f {
                Frame::Stderr(d) | Frame::Stdout(d) => d.len(),
                _ => panic!("{f:?}"),
            })
            .collect();
        assert_eq!(lens, [CHUNK, CHUNK, 5]);
        assert!(frames.iter().all(|f| matches!(f, Frame::Stderr(_))));
        let joined: Vec<u8> = frames
            .iter()
            .flat_map(|f| match f {
                Frame::Stderr(d) => d.to_vec(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(joined, data);
    }

    fn sample_frames() -> Vec<Frame> {
        vec![
            Frame::Stdin(Bytes::from_static(b"in\0\xff")),
            Frame::Stdout(Bytes::new()),
            Frame::Stderr(Bytes::from_static(b"err")),
            Frame::Eof,
            Frame::Signal("INT".into()),
            Frame::Resize { cols: 80, rows: 24 },
            Frame::Exit(ExitInfo {
                status: Some(3),
                signal: None,
                core_dumped: false,
                timed_out: false,
            }),
            Frame::Error(ApiError::new(ErrorCode::SshError, "gone")),
            Frame::Notice(Notice::Banner {
                text: "Authorized use only\r\n\x1b[2J".into(),
            }),
            Frame::Notice(Notice::NoTerminal),
        ]
    }

    #[test]
    fn every_kind_round_trips() {
        let mut buf = Vec::new();
        for frame in sample_frames() {
            frame.encode(&mut buf);
        }
        let mut rest = &buf[..];
        for expected in sample_frames() {
            let (frame, used) = decode(rest).unwrap().unwrap();
            assert_eq!(frame, expected);
            rest = &rest[used..];
        }
        assert!(rest.is_empty());
    }

    #[test]
    fn partial_input_asks_for_more() {
        let mut buf = Vec::new();
        Frame::Stdout(Bytes::from_static(b"hello")).encode(&mut buf);
        for cut in 0..buf.len() {
            assert!(decode(&buf[..cut]).unwrap().is_none(), "cut at {cut}");
        }
    }

    #[test]
    fn hostile_headers_are_refused_before_allocating() {
        assert!(matches!(
            decode(&[2, 0xff, 0xff, 0xff, 0xff]),
            Err(FrameError::TooLarge(_))
        ));
        assert!(matches!(
            decode(&[10, 0, 0, 0, 0]),
            Err(FrameError::UnknownKind(10))
        ));
        assert!(matches!(
            decode(&[0, 0, 0, 0, 0]),
            Err(FrameError::UnknownKind(0))
        ));
        assert!(decode(&[6, 0, 0, 0, 3, 1, 2, 3]).is_err());
        assert!(decode(&[5, 0, 0, 0, 4, b'k', b'i', b'l', b'l']).is_err());
        assert!(decode(&[4, 0, 0, 0, 1, 0]).is_err());
        assert!(decode(&[7, 0, 0, 0, 1, b'{']).is_err());
        assert!(decode(&[9, 0, 0, 0, 2, b'{', b'}']).is_err());
    }

    #[test]
    fn exit_codes_follow_ssh() {
        let exit = |status, signal: Option<&str>| ExitInfo {
            status,
            signal: signal.map(str::to_owned),
            core_dumped: false,
            timed_out: false,
        };
        assert_eq!(exit(Some(0), None).exit_code(), 0);
        assert_eq!(exit(Some(42), None).exit_code(), 42);
        assert_eq!(exit(None, Some("KILL")).exit_code(), 137);
        assert_eq!(exit(None, Some("TERM")).exit_code(), 143);
        assert_eq!(exit(None, None).exit_code(), 255);
        let timed_out = ExitInfo {
            timed_out: true,
            ..exit(None, Some("TERM"))
        };
        assert_eq!(timed_out.exit_code(), 124);
    }

    #[test]
    fn the_codec_matches_the_decoder_piece_by_piece() {
        let mut all = BytesMut::new();
        for frame in sample_frames() {
            frame.encode(&mut all);
        }
        // Fed a byte at a time, as a slow socket would.
        let mut codec = FrameCodec;
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for byte in all.iter() {
            buf.extend_from_slice(&[*byte]);
            while let Some(frame) = codec.decode(&mut buf).unwrap() {
                got.push(frame);
            }
        }
        assert_eq!(got, sample_frames());
        assert!(codec.decode_eof(&mut buf).unwrap().is_none());
        let mut cut = BytesMut::from(&all[..3]);
        assert!(matches!(
            codec.decode_eof(&mut cut),
            Err(FrameError::Truncated)
        ));
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn data_frames_round_trip(data in proptest::collection::vec(any::<u8>(), 0..4096), kind in 1u8..=3) {
            let data = Bytes::from(data);
            let frame = match kind { 1 => Frame::Stdin(data), 2 => Frame::Stdout(data), _ => Frame::Stderr(data) };
            let mut buf = Vec::new();
            frame.encode(&mut buf);
            let (back, used) = decode(&buf).unwrap().unwrap();
            prop_assert_eq!(used, buf.len());
            prop_assert_eq!(back, frame);
        }
    }

    /// Found by the `frame` fuzz target: a JSON payload is not canonical
    /// (`[]` is an exit with every field defaulted), so a frame is stable
    /// through decode and encode, not its bytes.
    #[test]
    fn json_payloads_round_trip_as_frames() {
        let input = [7, 0, 0, 0, 3, b'[', b'\n', b']'];
        let (frame, used) = decode(&input).unwrap().unwrap();
        assert_eq!(used, input.len());
        let mut again = Vec::new();
        frame.encode(&mut again);
        let (back, _) = decode(&again).unwrap().unwrap();
        assert_eq!(back, frame);
    }

    /// Found by the `frame` fuzz target: a number in an error's details
    /// (any JSON a server-side error carries) must read back as the same
    /// number after a frame is written again; serde_json's fast float
    /// parsing is off by one unit in the last place for some long literals.
    #[test]
    fn numbers_in_details_round_trip() {
        let payload = br#"[".ta5n","mu5(2u5",577777777707770777507777577]"#;
        let mut input = vec![8];
        input.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        input.extend_from_slice(payload);
        let (frame, _) = decode(&input).unwrap().unwrap();
        let mut again = Vec::new();
        frame.encode(&mut again);
        let (back, _) = decode(&again).unwrap().unwrap();
        assert_eq!(back, frame);
    }
}
