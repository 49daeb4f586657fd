//! The window title: what the frontend is doing and the hotkey that changes it.

use std::time::{Duration, Instant};

/// How long a message (screenshot saved, reset, ...) stays in the title.
pub const MESSAGE_TIME: Duration = Duration::from_secs(3);

/// What the title bar shows.
#[derive(Clone, Debug, Default)]
pub struct Status {
    pub name: String,
    pub paused: bool,
    pub grabbed: bool,
    message: Option<(String, Instant)>,
}

impl Status {
    #[must_use]
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            ..Self::default()
        }
    }

    /// Show `text` for [`MESSAGE_TIME`] from `now`.
    pub fn say(&mut self, text: impl Into<String>, now: Instant) {
        self.message = Some((text.into(), now));
    }

    /// The title at `now`.
    #[must_use]
    pub fn title(&self, now: Instant) -> String {
        let state = match (self.paused, self.grabbed) {
            (true, _) => "paused (Ctrl+Alt+P resumes)",
            (false, true) => "mouse grabbed (Ctrl+Alt+G releases)",
            (false, false) => "Ctrl+Alt+G grabs the mouse",
        };
        let mut title = format!("{} - {state}", self.name);
        if let Some((text, since)) = &self.message {
            if now.saturating_duration_since(*since) < MESSAGE_TIME {
                title.push_str(" - ");
                title.push_str(text);
            }
        }
        title
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_names_the_state_and_the_way_out() {
        let now = Instant::now();
        let mut s = Status::new("Nestor");
        assert_eq!(s.title(now), "Nestor - Ctrl+Alt+G grabs the mouse");
        s.grabbed = true;
        assert!(s.title(now).contains("Ctrl+Alt+G releases"));
        s.paused = true;
        assert!(s.title(now).contains("paused (Ctrl+Alt+P resumes)"));
    }

    #[test]
    fn messages_expire() {
        let start = Instant::now();
        let mut s = Status::new("Nestor");
        s.say("screenshot saved", start);
        assert!(s.title(start).ends_with("screenshot saved"));
        assert!(!s.title(start + MESSAGE_TIME).contains("screenshot"));
    }
}
