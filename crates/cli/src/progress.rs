//! Progress of long work (a billing run, an export, a backup): a bar on a
//! terminal, and where stderr is not one (cron, a log file, CI) a plain
//! line every few seconds instead, so that a log shows the work moving
//! without a bar's control characters.

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a plain line is written when stderr is not a terminal.
const PLAIN_LINE_SECONDS: u64 = 5;
/// How often the work is looked at (a billing run's look counts what is
/// still due: an index scan, kept rare beside the run).
pub const POLL_MILLISECONDS: u64 = 1000;
/// How often a bar is redrawn.
const TICK_MILLISECONDS: u64 = 200;

pub struct Progress {
    label: String,
    unit: &'static str,
    total: Option<u64>,
    bar: Option<ProgressBar>,
    last_line: Mutex<Option<Instant>>,
}

impl Progress {
    /// `total` when it is known (a bar), or none (a counter).
    pub fn new(label: &str, total: Option<u64>, unit: &'static str) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = match total {
                Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()),
                None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
            };
            let template = match (total, unit) {
                (Some(_), "bytes") => "{msg} [{bar:30}] {binary_bytes}/{binary_total_bytes} ({eta})",
                (Some(_), _) => "{msg} [{bar:30}] {pos}/{len} ({per_sec}, {eta})",
                (None, "bytes") => "{msg} {spinner} {binary_bytes} ({elapsed})",
                (None, _) => "{msg} {spinner} {pos} ({per_sec}, {elapsed})",
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(label.to_owned());
            bar.enable_steady_tick(Duration::from_millis(TICK_MILLISECONDS));
            bar
        });
        Progress { label: label.to_owned(), unit, total, bar, last_line: Mutex::new(None) }
    }

    pub fn set(&self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            return;
        }
        let mut last = self.last_line.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if last.is_some_and(|at| now.duration_since(at) < Duration::from_secs(PLAIN_LINE_SECONDS)) {
            return;
        }
        // The first look is at the start: nothing to say yet.
        if last.is_some() {
            eprintln!("baobao: {}: {}", self.label, self.amount(done));
        }
        *last = Some(now);
    }

    pub fn finish(&self, done: u64) {
        match &self.bar {
            Some(bar) => {
                bar.set_position(done);
                bar.finish();
            }
            None => eprintln!("baobao: {}: {} (done)", self.label, self.amount(done)),
        }
    }

    fn amount(&self, done: u64) -> String {
        match self.total {
            Some(total) => format!("{done} of {total} {}", self.unit),
            None => format!("{done} {}", self.unit),
        }
    }
}

/// Runs `work` while `look` is asked, every `POLL_MILLISECONDS`, how much
/// is done, and shows it; the progress ends with the work.
pub async fn watching<T, F, L>(progress: Progress, work: F, look: L) -> T
where
    F: std::future::Future<Output = T>,
    L: AsyncFnMut() -> Option<u64>,
{
    let mut look = look;
    let mut work = std::pin::pin!(work);
    let mut done = 0;
    let mut ticks = tokio::time::interval(Duration::from_millis(POLL_MILLISECONDS));
    loop {
        tokio::select! {
            result = &mut work => {
                if let Some(seen) = look().await {
                    done = seen.max(done);
                }
                progress.finish(done);
                return result;
            }
            _ = ticks.tick() => {
                if let Some(seen) = look().await {
                    done = seen.max(done);
                    progress.set(done);
                }
            }
        }
    }
}
