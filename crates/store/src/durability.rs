//! Group commit on SQLite: one flush to disk for every commit made while
//! the previous flush ran.
//!
//! With `synchronous = FULL` every SQLite commit flushed the write-ahead
//! log itself, holding the one writer while the disk worked: N concurrent
//! changes cost N flushes, one after another. Here the writer commits with
//! `synchronous = NORMAL` — the commit is complete and atomic in the log,
//! but not yet flushed — and releases the write lock at once; then the
//! transaction waits here until a flush of the log has covered it. One
//! waiter at a time flushes (`fdatasync` of the `-wal` file: a flush is of
//! the file, whichever descriptor wrote it), covering every commit counted
//! before it began; the commits made meanwhile by the next transactions
//! are covered by the next flush, which their waiters share. So flushes run
//! beside the writer, not inside it, and under load each covers many
//! commits — as PostgreSQL's WAL writer flushes concurrent commits together.
//!
//! Nothing is acknowledged before it is on disk: `Tx::commit` returns only
//! after its commit is covered. Frames a checkpoint moves from the log into
//! the database file are flushed by SQLite itself (in WAL mode with
//! `NORMAL`, the log is synchronised before each checkpoint and the
//! database after it). A crash of the process loses nothing committed (the
//! operating system has the log); a power cut loses at most commits that no
//! one was told about yet.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

pub(crate) struct Flusher {
    wal: PathBuf,
    /// Commits counted so far (each counted after its COMMIT returned).
    committed: AtomicU64,
    /// Every commit up to this count is on disk.
    durable: AtomicU64,
    /// Held by the one waiter flushing.
    turn: tokio::sync::Mutex<()>,
    /// Flushes done, for operators and benchmarks: commits per flush.
    flushes: AtomicU64,
}

impl Flusher {
    /// For the SQLite database at `url`; none for a database in memory.
    pub(crate) fn for_url(url: &str) -> Result<Option<Flusher>, sqlx::Error> {
        use std::str::FromStr;
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)?;
        let file = options.get_filename();
        if url.contains(":memory:") || url.contains("mode=memory") || file.as_os_str().is_empty() {
            return Ok(None);
        }
        let mut wal = file.as_os_str().to_owned();
        wal.push("-wal");
        Ok(Some(Flusher {
            wal: wal.into(),
            committed: AtomicU64::new(0),
            durable: AtomicU64::new(0),
            turn: tokio::sync::Mutex::new(()),
            flushes: AtomicU64::new(0),
        }))
    }

    /// Counts a commit that has just returned; its number.
    pub(crate) fn committed(&self) -> u64 {
        self.committed.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Returns once commit `number` is on disk, flushing if no flush that
    /// began after it has done so.
    pub(crate) async fn until_durable(&self, number: u64) -> std::io::Result<()> {
        if self.durable.load(Ordering::Acquire) >= number {
            return Ok(());
        }
        let _turn = self.turn.lock().await;
        if self.durable.load(Ordering::Acquire) >= number {
            return Ok(());
        }
        // Every commit counted by now has its frames in the log's file.
        let covered = self.committed.load(Ordering::Acquire);
        let wal = self.wal.clone();
        tokio::task::spawn_blocking(move || sync_file(&wal)).await.map_err(std::io::Error::other)??;
        self.durable.fetch_max(covered, Ordering::AcqRel);
        self.flushes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Commits counted and flushes done so far.
    pub(crate) fn counts(&self) -> (u64, u64) {
        (self.committed.load(Ordering::Acquire), self.flushes.load(Ordering::Relaxed))
    }

    /// Every commit so far on disk.
    pub(crate) async fn flush(&self) -> std::io::Result<()> {
        self.until_durable(self.committed.load(Ordering::Acquire)).await
    }
}

/// `fdatasync` of a file; one that is not there holds nothing to flush (the
/// log is made on the first write, and truncated, not removed, while open).
pub(crate) fn sync_file(path: &std::path::Path) -> std::io::Result<()> {
    match std::fs::File::open(path) {
        Ok(file) => file.sync_data(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error),
    }
}
