//! Length-delimited framing (4-byte big-endian length, then the payload) with a typed
//! error for each way a stream of frames can be bad.

use bytes::{Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder, LengthDelimitedCodec, LengthDelimitedCodecError};

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
        if e.get_ref()
            .is_some_and(|inner| inner.is::<LengthDelimitedCodecError>())
        {
            FrameError::Oversized
        } else {
            FrameError::Io(e)
        }
    }
}

/// tokio-util's length-delimited codec with a frame limit, whose decoder reports a
/// truncated final frame as [`FrameError::Truncated`] instead of a generic error.
#[derive(Debug)]
pub struct FrameCodec(LengthDelimitedCodec);

impl FrameCodec {
    /// A codec refusing frames longer than `max_frame_size` bytes, in both directions.
    pub fn new(max_frame_size: usize) -> Self {
        FrameCodec(
            LengthDelimitedCodec::builder()
                .length_field_length(4)
                .max_frame_length(max_frame_size)
                .new_codec(),
        )
    }
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        Ok(self.0.decode(src)?)
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
        Ok(self.0.encode(item, dst)?)
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
    }
}
