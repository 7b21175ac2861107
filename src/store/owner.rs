//! Which process owns a staging file or a per-run folder, so that leftovers of a killed run can be
//! removed by a later one without touching those of a run that is still going.
//!
//! A process is named by its pid and its start time (clock ticks since boot, field 22 of
//! `/proc/<pid>/stat`): pids are reused, but a reused pid has a later start time. The tag is
//! digits only, `<pid, 10 digits><start time>`, so that it can end a staging name of the form
//! `file#<digits>` that object-store listings skip.

/// A process, as recorded in the names of the things it stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    pub start_ticks: u64,
}

/// Width of the pid in a tag.
const PID_DIGITS: usize = 10;

impl Owner {
    /// This process.
    pub fn current() -> Self {
        let pid = std::process::id();
        Self {
            pid,
            start_ticks: start_ticks(pid).unwrap_or(0),
        }
    }

    /// The digits naming this process: the pid on ten digits, then the start time.
    pub fn tag(&self) -> String {
        format!(
            "{:0width$}{}",
            self.pid,
            self.start_ticks,
            width = PID_DIGITS
        )
    }

    /// Reads a tag written by [`Owner::tag`]; `None` for anything else.
    pub fn parse(tag: &str) -> Option<Self> {
        if tag.len() <= PID_DIGITS || !tag.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Some(Self {
            pid: tag[..PID_DIGITS].parse().ok()?,
            start_ticks: tag[PID_DIGITS..].parse().ok()?,
        })
    }

    /// Whether this process is still running (a process with its pid and start time exists).
    pub fn is_alive(&self) -> bool {
        start_ticks(self.pid) == Some(self.start_ticks)
    }
}

/// The start time of process `pid` in clock ticks since boot, `None` when there is no such process.
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count from its end.
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the name: state is field 3, so start time (field 22) is the 20th of the rest.
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_and_name_live_processes_only() {
        let me = Owner::current();
        assert!(me.start_ticks > 0);
        assert!(me.is_alive());
        assert_eq!(Owner::parse(&me.tag()), Some(me));
        let gone = Owner {
            start_ticks: me.start_ticks + 1,
            ..me
        };
        assert!(!gone.is_alive(), "a reused pid has another start time");
        for bad in ["", "123", "12345678901x", "1"] {
            assert_eq!(Owner::parse(bad), None, "{bad}");
        }
    }
}
