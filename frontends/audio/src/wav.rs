//! 16-bit PCM WAV files: the recorder the `--audio-wav` flag attaches, and a reader for tests.

use nestor_sound::{AudioSink, Frame, SAMPLE_RATE};
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

const HEADER_BYTES: u32 = 44;
const CHANNELS: u16 = 2;

#[derive(Debug, thiserror::Error)]
pub enum WavError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not a 16-bit PCM WAV file: {0}")]
    Format(&'static str),
}

/// Records the mix as a stereo 16-bit WAV at [`SAMPLE_RATE`]. The header's sizes are written
/// on every flush and when the writer is dropped, so the file is valid whenever the machine
/// stops.
pub struct WavWriter {
    out: BufWriter<File>,
    data_bytes: u32,
    failed: bool,
}

impl WavWriter {
    pub fn create(path: &Path) -> Result<Self, WavError> {
        let mut w = Self {
            out: BufWriter::new(File::create(path)?),
            data_bytes: 0,
            failed: false,
        };
        w.write_header()?;
        Ok(w)
    }

    fn write_header(&mut self) -> std::io::Result<()> {
        let block = CHANNELS * 2;
        let mut h = Vec::with_capacity(HEADER_BYTES as usize);
        h.extend_from_slice(b"RIFF");
        h.extend_from_slice(&(36u32.saturating_add(self.data_bytes)).to_le_bytes());
        h.extend_from_slice(b"WAVEfmt ");
        h.extend_from_slice(&16u32.to_le_bytes());
        h.extend_from_slice(&1u16.to_le_bytes()); // PCM
        h.extend_from_slice(&CHANNELS.to_le_bytes());
        h.extend_from_slice(&SAMPLE_RATE.to_le_bytes());
        h.extend_from_slice(&(SAMPLE_RATE * u32::from(block)).to_le_bytes());
        h.extend_from_slice(&block.to_le_bytes());
        h.extend_from_slice(&16u16.to_le_bytes());
        h.extend_from_slice(b"data");
        h.extend_from_slice(&self.data_bytes.to_le_bytes());
        self.out.write_all(&h)
    }

    fn finish_header(&mut self) -> std::io::Result<()> {
        self.out.flush()?;
        let end = self.out.seek(SeekFrom::End(0))?;
        self.out.seek(SeekFrom::Start(0))?;
        self.write_header()?;
        self.out.flush()?;
        self.out.seek(SeekFrom::Start(end))?;
        Ok(())
    }

    fn report(&mut self, e: &std::io::Error) {
        if !self.failed {
            tracing::warn!("audio recording stopped: {e}");
            self.failed = true;
        }
    }
}

impl AudioSink for WavWriter {
    fn write(&mut self, frames: &[Frame]) {
        if self.failed {
            return;
        }
        // A RIFF file holds at most 4 GiB: stop recording there.
        let bytes = frames.len() as u64 * 4;
        if u64::from(self.data_bytes) + bytes > u64::from(u32::MAX - HEADER_BYTES) {
            return;
        }
        let mut buf = Vec::with_capacity(bytes as usize);
        for [l, r] in frames {
            buf.extend_from_slice(&l.to_le_bytes());
            buf.extend_from_slice(&r.to_le_bytes());
        }
        let before = self.data_bytes;
        match self.out.write_all(&buf) {
            Ok(()) => self.data_bytes += bytes as u32,
            Err(e) => self.report(&e),
        }
        // Keep the header current every MiB, so a killed run still leaves a playable file.
        if before >> 20 != self.data_bytes >> 20 {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if let Err(e) = self.finish_header() {
            self.report(&e);
        }
    }
}

impl Drop for WavWriter {
    fn drop(&mut self) {
        if !self.failed {
            let _ = self.finish_header();
        }
    }
}

/// A decoded 16-bit PCM WAV file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wav {
    pub sample_rate: u32,
    pub channels: u16,
    /// Interleaved samples.
    pub samples: Vec<i16>,
}

impl Wav {
    /// The samples of one channel.
    #[must_use]
    pub fn channel(&self, index: u16) -> Vec<i16> {
        let n = usize::from(self.channels.max(1));
        self.samples
            .iter()
            .skip(usize::from(index))
            .step_by(n)
            .copied()
            .collect()
    }
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Parse a 16-bit PCM WAV file (walking its chunks).
pub fn read_wav(bytes: &[u8]) -> Result<Wav, WavError> {
    if bytes.get(0..4) != Some(b"RIFF") || bytes.get(8..12) != Some(b"WAVE") {
        return Err(WavError::Format("no RIFF/WAVE header"));
    }
    let mut at = 12usize;
    let mut format = None;
    while let (Some(id), Some(len)) = (bytes.get(at..at + 4), le32(bytes, at + 4)) {
        let body = at + 8;
        let end = body.saturating_add(len as usize).min(bytes.len());
        match id {
            b"fmt " => {
                let tag = le16(bytes, body).ok_or(WavError::Format("short fmt chunk"))?;
                let channels = le16(bytes, body + 2).ok_or(WavError::Format("short fmt"))?;
                let rate = le32(bytes, body + 4).ok_or(WavError::Format("short fmt"))?;
                let bits = le16(bytes, body + 14).ok_or(WavError::Format("short fmt"))?;
                if tag != 1 || bits != 16 || channels == 0 {
                    return Err(WavError::Format("not 16-bit PCM"));
                }
                format = Some((rate, channels));
            }
            b"data" => {
                let (sample_rate, channels) = format.ok_or(WavError::Format("data before fmt"))?;
                let samples = bytes[body.min(end)..end]
                    .chunks_exact(2)
                    .map(|c| i16::from_le_bytes([c[0], c[1]]))
                    .collect();
                return Ok(Wav {
                    sample_rate,
                    channels,
                    samples,
                });
            }
            _ => {}
        }
        at = end + (len as usize & 1);
    }
    Err(WavError::Format("no data chunk"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_file_reads_back() {
        let path = std::env::temp_dir().join(format!("nestor-wav-{}.wav", std::process::id()));
        let mut w = WavWriter::create(&path).unwrap();
        w.write(&[[1, -1], [300, -300]]);
        w.flush();
        w.write(&[[i16::MAX, i16::MIN]]);
        drop(w);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 44 + 12);
        assert_eq!(le32(&bytes, 4), Some(36 + 12));
        let wav = read_wav(&bytes).unwrap();
        assert_eq!(wav.sample_rate, SAMPLE_RATE);
        assert_eq!(wav.channels, 2);
        assert_eq!(wav.channel(0), vec![1, 300, i16::MAX]);
        assert_eq!(wav.channel(1), vec![-1, -300, i16::MIN]);
        assert!(read_wav(&bytes[..40]).is_err());
        assert!(read_wav(b"RIFF\0\0\0\0WAVEjunk\xff\xff\xff\xff").is_err());
        let _ = std::fs::remove_file(path);
    }
}
