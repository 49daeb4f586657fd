//! The host's gamepads onto the game port, through gilrs: the first two connected pads are
//! sticks A and B (left stick for the axes, the south and east buttons for buttons 1 and 2).

use gilrs::{Axis, Button, EventType, GamepadId, Gilrs};
use nestor_gameport::{GamepadInput, Stick};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Polls gilrs on its own thread until dropped.
pub struct GamepadThread {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for GamepadThread {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Feed `input` from the host's gamepads. Without gamepad support (no udev, no permission)
/// this logs one line and the sticks stay unplugged.
#[must_use]
pub fn spawn_gamepad_thread(input: GamepadInput) -> Option<GamepadThread> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("nestor-gamepad".into())
        .spawn(move || poll(&input, &s))
        .ok()?;
    Some(GamepadThread {
        stop,
        thread: Some(thread),
    })
}

fn poll(input: &GamepadInput, stop: &AtomicBool) {
    let mut gilrs = match Gilrs::new() {
        Ok(g) => g,
        Err(e) => {
            tracing::info!("gamepad: not available ({e}); the game port has no sticks");
            return;
        }
    };
    let mut slots: [Option<GamepadId>; 2] = [None, None];
    for (id, _) in gilrs.gamepads() {
        plug(&mut slots, input, id);
    }
    if slots[0].is_none() {
        tracing::info!("gamepad: none connected yet; the game port's sticks are unplugged");
    }
    while !stop.load(Ordering::Relaxed) {
        while let Some(ev) = gilrs.next_event() {
            match ev.event {
                EventType::Connected => plug(&mut slots, input, ev.id),
                EventType::Disconnected => {
                    if let Some(i) = slot_of(&slots, ev.id) {
                        slots[i] = None;
                        input.set_stick(i, Stick::default());
                    }
                }
                EventType::AxisChanged(axis, value, _) => {
                    if let Some(i) = slot_of(&slots, ev.id) {
                        input.update(i, |s| apply_axis(s, axis, value));
                    }
                }
                EventType::ButtonPressed(b, _) | EventType::ButtonReleased(b, _) => {
                    let down = matches!(ev.event, EventType::ButtonPressed(..));
                    if let Some(i) = slot_of(&slots, ev.id) {
                        input.update(i, |s| apply_button(s, b, down));
                    }
                }
                _ => {}
            }
        }
        std::thread::sleep(Duration::from_millis(4));
    }
}

fn slot_of(slots: &[Option<GamepadId>; 2], id: GamepadId) -> Option<usize> {
    slots.iter().position(|s| *s == Some(id))
}

fn plug(slots: &mut [Option<GamepadId>; 2], input: &GamepadInput, id: GamepadId) {
    if slot_of(slots, id).is_some() {
        return;
    }
    if let Some(i) = slots.iter().position(Option::is_none) {
        slots[i] = Some(id);
        input.set_stick(
            i,
            Stick {
                connected: true,
                ..Stick::default()
            },
        );
        tracing::info!("gamepad: connected as stick {}", ["A", "B"][i]);
    }
}

/// gilrs reports up as positive Y; the game port's Y grows downwards.
fn apply_axis(s: &mut Stick, axis: Axis, value: f32) {
    match axis {
        Axis::LeftStickX => s.x = value,
        Axis::LeftStickY => s.y = -value,
        _ => {}
    }
}

fn apply_button(s: &mut Stick, b: Button, down: bool) {
    match b {
        Button::South => s.button1 = down,
        Button::East => s.button2 = down,
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pad_events_map_onto_the_stick() {
        let mut s = Stick::default();
        apply_axis(&mut s, Axis::LeftStickX, 0.5);
        apply_axis(&mut s, Axis::LeftStickY, 1.0);
        apply_axis(&mut s, Axis::RightStickX, 0.9);
        apply_button(&mut s, Button::South, true);
        apply_button(&mut s, Button::East, true);
        apply_button(&mut s, Button::East, false);
        assert_eq!((s.x, s.y, s.button1, s.button2), (0.5, -1.0, true, false));
        // With or without gamepad support here, starting and stopping the thread is fine.
        let t = spawn_gamepad_thread(GamepadInput::default());
        drop(t);
    }
}
