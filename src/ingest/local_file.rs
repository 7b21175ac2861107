//! Reading a local input file, through the page cache or around it.
//!
//! A file larger than the memory left to cache it gains nothing from the page cache: its first
//! pages are gone before the file is read again, and filling the cache costs the kernel a page
//! allocation, a copy and, once memory is full, the reclaim of another page for each page read
//! (measured on 32 GB read cold on a 24 GB machine: 44 s of system time through the cache,
//! 1.6–2.9 s with direct reads). Such a file is read with `O_DIRECT` into an aligned buffer; it
//! also leaves the cache to what the user reads next. Any other file is read through the cache,
//! which keeps it for the next command.

use std::fs::File;
use std::io::{BufRead, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// How a local file is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FileReads {
    /// Around the page cache when the file is larger than the memory available to cache it.
    #[default]
    Auto,
    /// Around the page cache whenever the file system allows it.
    Direct,
    /// Through the page cache.
    Cached,
}

impl FileReads {
    pub fn name(self) -> &'static str {
        match self {
            FileReads::Auto => "auto",
            FileReads::Direct => "direct",
            FileReads::Cached => "cached",
        }
    }
}

crate::choice::impl_choice!(
    FileReads,
    [FileReads::Auto, FileReads::Direct, FileReads::Cached]
);

/// The largest read (a smaller file is read in one). Direct reads go to the device as they are
/// asked, without the kernel's read-ahead, so they are large enough that the device is kept busy.
const READ_BYTES: usize = 4 << 20;

/// The alignment direct reads need for their buffer, offset and length (the logical block size
/// of common devices; a file system that needs more refuses and the file is read cached).
const ALIGN: usize = 4096;

/// A local file read in large blocks, counting the bytes read into `count`.
pub struct FileReader {
    file: File,
    /// `len` bytes (at most `READ_BYTES`, whole blocks) from `start` on, which is aligned to
    /// `ALIGN`.
    buf: Vec<u8>,
    start: usize,
    len: usize,
    /// The bytes read and not yet consumed, relative to `start`.
    pos: usize,
    end: usize,
    direct: bool,
    count: Arc<AtomicU64>,
}

impl FileReader {
    /// Opens `path` to be read as `reads` says.
    pub fn open(path: &Path, reads: FileReads, count: Arc<AtomicU64>) -> std::io::Result<Self> {
        let size = std::fs::metadata(path)?.len();
        let wants_direct = match reads {
            FileReads::Cached => false,
            FileReads::Direct => true,
            FileReads::Auto => memory_to_cache().is_some_and(|free| size > free),
        };
        let (file, direct) = match wants_direct.then(|| open_direct(path)).flatten() {
            Some(file) => (file, true),
            None => (File::open(path)?, false),
        };
        if direct {
            tracing::debug!(path = %path.display(), "read around the page cache");
        }
        // A small file gets a buffer of its own size in whole blocks: a folder of many small
        // files is not read through a fresh 4 MiB buffer each.
        let len = usize::try_from(size)
            .unwrap_or(READ_BYTES)
            .clamp(1, READ_BYTES)
            .next_multiple_of(ALIGN);
        let buf = vec![0u8; len + ALIGN];
        let start = buf.as_ptr().align_offset(ALIGN);
        Ok(Self {
            file,
            buf,
            start,
            len,
            pos: 0,
            end: 0,
            direct,
            count,
        })
    }

    /// Whether the file is being read around the page cache.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Goes on reading through the page cache: a direct read was refused (a file system that
    /// takes direct opens but not reads of this alignment, or a short read that left the file's
    /// offset unaligned).
    #[cfg(target_os = "linux")]
    fn stop_direct(&mut self) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let fd = self.file.as_raw_fd();
        // SAFETY: `fd` is this reader's open file; F_GETFL and F_SETFL read and set its status
        // flags and touch no memory.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_DIRECT) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        self.direct = false;
        Ok(())
    }

    #[cfg(not(target_os = "linux"))]
    fn stop_direct(&mut self) -> std::io::Result<()> {
        self.direct = false;
        Ok(())
    }
}

/// `path` opened for direct reads, or `None` where they are not to be had (a file system
/// without them, such as tmpfs, or a system other than Linux).
fn open_direct(path: &Path) -> Option<File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        None
    }
}

/// The memory the page cache could hold a file in: what the kernel counts as available, less
/// where the process's control group allows less (a container). `None` where it is not known.
fn memory_to_cache() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let available = kib * 1024;
    let read = |name: &str| -> Option<u64> {
        std::fs::read_to_string(format!("/sys/fs/cgroup/{name}"))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    // cgroup v2: the limit is "max" when there is none, which does not parse.
    Some(match (read("memory.max"), read("memory.current")) {
        (Some(max), Some(current)) => available.min(max.saturating_sub(current)),
        _ => available,
    })
}

impl BufRead for FileReader {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        if self.pos == self.end {
            let n = loop {
                let region = &mut self.buf[self.start..self.start + self.len];
                match self.file.read(region) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) if self.direct && e.raw_os_error() == Some(libc::EINVAL) => {
                        self.stop_direct()?;
                    }
                    Err(e) => return Err(e),
                }
            };
            self.count.fetch_add(n as u64, Ordering::Relaxed);
            (self.pos, self.end) = (0, n);
        }
        Ok(&self.buf[self.start + self.pos..self.start + self.end])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.end);
    }
}

impl Read for FileReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        super::input::read_out_of_buffer(self, out)
    }
}
