//! Length-delimited framing (4-byte big-endian length, then the payload) with a typed
//! error for each way a stream of frames can be bad.

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// Why a stream of frames was abandoned.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// A length prefix exceeded the frame limit. The stream cannot be resynchronised.
    #[error("frame exceeds the limit")]
    Oversized,
    /// The stream ended in the middle of a frame.
    #[error("stream ended inside a frame")]
    Truncated,
    /// The stream itself failed.
    #[error("stream error: {0}")]
    Io(std::io::Error),
}

impl From<std::io::Error> for FrameError {
    fn from(e: std::io::Error) -> Self {
        FrameError::Io(e)
    }
}

/// Length-delimited frames (a 4-byte big-endian length, then the payload) with a frame
/// limit. The decoder consumes nothing until a whole frame is there, so a stream that
/// ends anywhere inside a frame, its length prefix included, is reported as
/// [`FrameError::Truncated`]; and it never reserves room for more than a bounded step
/// beyond what has arrived ([`RESERVE_STEP`]), so a 4-byte prefix announcing a large
/// frame costs nothing until the bytes come.
#[derive(Debug)]
pub struct FrameCodec {
    max_frame_size: usize,
}

/// At most this much room is reserved ahead of the bytes of a frame that have arrived.
pub const RESERVE_STEP: usize = 64 << 10;

const PREFIX: usize = 4;

impl FrameCodec {
    /// A codec refusing frames longer than `max_frame_size` bytes, in both directions.
    pub fn new(max_frame_size: usize) -> Self {
        FrameCodec { max_frame_size }
    }
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        let Some(prefix) = src.get(..PREFIX) else {
            return Ok(None);
        };
        let mut len = [0u8; PREFIX];
        len.copy_from_slice(prefix);
        let len = u32::from_be_bytes(len) as usize;
        if len > self.max_frame_size {
            return Err(FrameError::Oversized);
        }
        let whole = PREFIX + len;
        if src.len() < whole {
            let step = (whole - src.len()).min(RESERVE_STEP);
            src.reserve(step);
            return Ok(None);
        }
        let mut frame = src.split_to(whole);
        let _ = frame.split_to(PREFIX);
        Ok(Some(frame))
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => Err(FrameError::Truncated),
        }
    }
}

impl Encoder<Bytes> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), FrameError> {
        let len = u32::try_from(item.len()).map_err(|_| FrameError::Oversized)?;
        if item.len() > self.max_frame_size {
            return Err(FrameError::Oversized);
        }
        dst.reserve(PREFIX + item.len());
        dst.extend_from_slice(&len.to_be_bytes());
        dst.extend_from_slice(&item);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_oversize_and_truncation() {
        let mut codec = FrameCodec::new(10);
        let mut buf = BytesMut::new();
        codec
            .encode(Bytes::from_static(b"hello"), &mut buf)
            .unwrap();
        codec
            .encode(Bytes::from_static(b"world!"), &mut buf)
            .unwrap();
        assert!(matches!(
            codec.encode(Bytes::from_static(b"far too long"), &mut BytesMut::new()),
            Err(FrameError::Oversized)
        ));
        assert_eq!(&codec.decode(&mut buf).unwrap().unwrap()[..], b"hello");
        assert_eq!(&codec.decode_eof(&mut buf).unwrap().unwrap()[..], b"world!");
        assert!(codec.decode_eof(&mut buf).unwrap().is_none());

        let mut big = BytesMut::from(&[0u8, 0, 1, 0][..]);
        assert!(matches!(codec.decode(&mut big), Err(FrameError::Oversized)));

        let mut cut = BytesMut::from(&[0u8, 0, 0, 8, 1, 2][..]);
        assert!(codec.decode(&mut cut).unwrap().is_none());
        assert!(matches!(
            codec.decode_eof(&mut cut),
            Err(FrameError::Truncated)
        ));
        // Cut right after a length prefix (found by fuzzing: reported as a clean end).
        let mut bare = BytesMut::from(&[0u8, 0, 0, 1, 3, 0, 0, 0, 5][..]);
        assert_eq!(&codec.decode(&mut bare).unwrap().unwrap()[..], &[3]);
        assert!(matches!(
            codec.decode_eof(&mut bare),
            Err(FrameError::Truncated)
        ));
    }

    #[test]
    fn a_large_announced_frame_reserves_only_a_step() {
        let mut codec = FrameCodec::new(8 << 20);
        let mut buf = BytesMut::from(&(8u32 << 20).to_be_bytes()[..]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(
            buf.capacity() <= PREFIX + RESERVE_STEP + 64,
            "{}",
            buf.capacity()
        );
    }
}
