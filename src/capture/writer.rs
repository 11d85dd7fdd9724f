//! The writer side of a capture: the sink opened as a pcap file (one
//! interface) or a pcapng file (several, one interface block each, closed by
//! their statistics), and the write errors named after the sink.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::AsFd;

use super::Sink;
use super::error::CaptureError;
use super::merge::RingCounts;
use super::pcap::{Format, InterfaceStats, PcapWriter, PcapngWriter, TsResolution};

/// Output buffer size.
const OUT_BUFFER: usize = 64 << 10;

/// The file being written.
enum CaptureFile {
    Pcap(PcapWriter<Box<dyn Write>>),
    Pcapng(PcapngWriter<Box<dyn Write>>),
}

/// What became of a packet handed to [`Output::write_packet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Written {
    /// It is written (or buffered).
    Done,
    /// Standard output's reader (wireshark) went away: the capture ends quietly.
    PipeClosed,
}

/// A capture file being written to a [`Sink`].
pub(super) struct Output {
    file: CaptureFile,
    /// The sink, as named in messages.
    target: String,
    /// Standard output: flushed after every packet, a closed pipe is no error.
    is_stdout: bool,
}

impl Output {
    /// Opens `sink` and writes the file header: pcap or pcapng (with one
    /// interface block per name of `interfaces`).
    pub(super) fn open(
        sink: Sink,
        format: Format,
        interfaces: &[String],
        snaplen: u32,
    ) -> Result<Output, CaptureError> {
        let target = sink.describe();
        let write_err = |source| CaptureError::Write {
            target: target.clone(),
            source,
        };
        let is_stdout = matches!(sink, Sink::Stdout);
        let raw: Box<dyn Write> = match sink {
            Sink::File(path) => {
                let f = File::create(&path)
                    .map_err(|source| CaptureError::CreateOutput { path, source })?;
                // Small packets are gathered; a packet of OUT_BUFFER bytes or
                // more goes to the file in one writev, without a copy here.
                Box::new(BufWriter::with_capacity(OUT_BUFFER, f))
            }
            Sink::Stdout => {
                let fd = io::stdout()
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(write_err)?;
                Box::new(BufWriter::with_capacity(OUT_BUFFER, File::from(fd)))
            }
            Sink::Writer(w) => Box::new(BufWriter::with_capacity(OUT_BUFFER, w)),
        };
        let mut file = match format {
            Format::Pcap => {
                let mut w =
                    PcapWriter::new(raw, snaplen, TsResolution::Micro).map_err(write_err)?;
                w.set_flush_each_packet(is_stdout);
                CaptureFile::Pcap(w)
            }
            Format::Pcapng => {
                let mut w = PcapngWriter::new(raw, "tcplab").map_err(write_err)?;
                for n in interfaces {
                    w.add_interface(n, snaplen).map_err(write_err)?;
                }
                w.set_flush_each_packet(is_stdout);
                CaptureFile::Pcapng(w)
            }
        };
        if is_stdout {
            file.flush().map_err(write_err)?;
        }
        Ok(Output {
            file,
            target,
            is_stdout,
        })
    }

    fn error(&self, source: io::Error) -> CaptureError {
        CaptureError::Write {
            target: self.target.clone(),
            source,
        }
    }

    /// Appends a packet of interface number `iface` (ignored in a pcap file).
    pub(super) fn write_packet(
        &mut self,
        iface: u32,
        ts: u64,
        orig_len: u32,
        data: &[u8],
    ) -> Result<Written, CaptureError> {
        match self.file.write(iface, ts, orig_len, data) {
            Ok(()) => Ok(Written::Done),
            Err(e) if self.is_stdout && e.kind() == io::ErrorKind::BrokenPipe => {
                Ok(Written::PipeClosed)
            }
            Err(e) => Err(self.error(e)),
        }
    }

    /// Closes the file: in pcapng, one statistics block per interface (from
    /// `counts`, taken at `end_ns`, the capture having started at
    /// `start_ns`); then the final flush.
    pub(super) fn finish(
        mut self,
        counts: &[RingCounts],
        start_ns: u64,
        end_ns: u64,
    ) -> Result<(), CaptureError> {
        if let CaptureFile::Pcapng(w) = &mut self.file {
            for (i, c) in counts.iter().enumerate() {
                let s = InterfaceStats {
                    ts: end_ns,
                    start: Some(start_ns),
                    received: Some(c.seen),
                    dropped: Some(c.dropped),
                    delivered: Some(c.written),
                };
                if let Err(e) = w.write_statistics(i as u32, &s) {
                    return Err(self.error(e));
                }
            }
        }
        match self.file.flush() {
            Err(e) if !(self.is_stdout && e.kind() == io::ErrorKind::BrokenPipe) => {
                Err(self.error(e))
            }
            _ => Ok(()),
        }
    }
}

impl CaptureFile {
    fn write(&mut self, iface: u32, ts: u64, orig_len: u32, data: &[u8]) -> io::Result<()> {
        match self {
            CaptureFile::Pcap(w) => w.write_packet(ts, orig_len, data),
            CaptureFile::Pcapng(w) => w.write_packet(iface, ts, orig_len, data),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            CaptureFile::Pcap(w) => w.flush(),
            CaptureFile::Pcapng(w) => w.flush(),
        }
    }
}
