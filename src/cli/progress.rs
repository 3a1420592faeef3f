//! Live progress on a terminal (indicatif): one line per piece of long work (a load test, a
//! drill, a model call, `run --wait`'s next poll) with its elapsed time and the figure that
//! matters. Nothing of it when stderr is not a terminal or with `--json`. The run's event lines
//! go through it too, so bars and lines do not garble each other.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::progress::Progress;

pub struct Bars {
    multi: Option<MultiProgress>,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    /// Bars on stderr when it is a terminal and `quiet` is not asked for.
    pub fn new(quiet: bool) -> Bars {
        let on = !quiet && std::io::stderr().is_terminal();
        Bars {
            multi: on.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
            bars: Mutex::default(),
        }
    }

    /// A line for the person (an event), above the bars.
    pub fn line(&self, text: &str) {
        let text = crate::domain::human::visible(text);
        match &self.multi {
            Some(m) => {
                let _ = m.println(text);
            }
            None => eprintln!("{text}"),
        }
    }
}

impl Progress for Bars {
    fn show(&self, what: &str, line: &str) {
        let Some(multi) = &self.multi else { return };
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        let bar = bars.entry(what.to_string()).or_insert_with(|| {
            let b = multi.add(ProgressBar::new_spinner());
            b.set_style(
                ProgressStyle::with_template("{spinner} {prefix:.bold} [{elapsed}] {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            b.set_prefix(what.to_string());
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        bar.set_message(crate::domain::human::visible(line).into_owned());
    }

    fn bar(&self, what: &str, pos: u64, len: u64, line: &str) {
        let Some(multi) = &self.multi else { return };
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        let bar = bars.entry(what.to_string()).or_insert_with(|| {
            let b = multi.add(ProgressBar::new(len));
            b.set_style(
                ProgressStyle::with_template("{prefix:.bold} {bar:24} {pos}/{len} s  {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            b.set_prefix(what.to_string());
            b
        });
        bar.set_length(len);
        bar.set_position(pos);
        bar.set_message(crate::domain::human::visible(line).into_owned());
    }

    fn done(&self, what: &str) {
        if let Some(b) = self.bars.lock().unwrap_or_else(|e| e.into_inner()).remove(what) {
            b.finish_and_clear();
        }
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        for (_, b) in self.bars.lock().unwrap_or_else(|e| e.into_inner()).drain() {
            b.finish_and_clear();
        }
    }
}
