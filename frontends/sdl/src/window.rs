//! The window's loop: run a slice of guest time, handle SDL's events, redraw the lines of the
//! picture the guest changed.

use crate::hotkeys::{hotkey, Hotkey};
use crate::keymap::guest_key;
use crate::layout::{display_aspect, fit};
use crate::snapshots::SnapshotRequest;
use crate::status::Status;
use crate::SdlOptions;
use anyhow::{anyhow, Context};
use nestor_i8042::{buttons, Key, I8042};
use nestor_machine::{Machine, MachineExit};
use nestor_vga::{Damage, Frame, Vga};
use sdl2::event::{Event, WindowEvent};
use sdl2::mouse::MouseButton;
use sdl2::pixels::{Color, PixelFormatEnum};
use sdl2::rect::Rect;
use sdl2::render::{Texture, TextureCreator, WindowCanvas};
use sdl2::video::{FullscreenType, WindowContext};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Guest time run between two looks at the host's events.
const SLICE_NS: u64 = 10_000_000;
/// At most 60 looks at the picture a second; with nothing written, nothing is drawn.
const MIN_FRAME: Duration = Duration::from_micros(16_667);
/// How long a paused frontend waits for an event before looking again.
const PAUSED_WAIT_MS: u32 = 50;
/// The window's first size (4:3).
const INITIAL_SIZE: (u32, u32) = (800, 600);

/// Host-side state of the window: what is held, grabbed, shown. No guest state.
struct Session {
    canvas: WindowCanvas,
    mouse: sdl2::mouse::MouseUtil,
    status: Status,
    /// Guest keys the host holds down, released when the window loses focus.
    held: BTreeSet<Key>,
    buttons: u8,
    options: SdlOptions,
    frames: u64,
    /// A snapshot hotkey's request, served before the next slice.
    snapshot_request: Option<SnapshotRequest>,
}

/// The picture as last uploaded, and when the guest's picture was last looked at.
struct Screen<'a> {
    creator: &'a TextureCreator<WindowContext>,
    texture: Option<(Texture<'a>, u32, u32)>,
    aspect: (u32, u32),
    /// The adapter's picture, brought up to date by [`Vga::render_update`].
    frame: Frame,
    checked_at: Option<Instant>,
}

pub(crate) fn run(machine: &mut Machine, options: SdlOptions) -> anyhow::Result<MachineExit> {
    let sdl = sdl2::init().map_err(|e| anyhow!("SDL: {e}"))?;
    let video = sdl.video().map_err(|e| anyhow!("SDL video: {e}"))?;
    let status = Status::new(&options.name);
    let mut window = video
        .window(
            &status.title(Instant::now()),
            INITIAL_SIZE.0,
            INITIAL_SIZE.1,
        )
        .position_centered()
        .resizable()
        .build()
        .context("cannot open the window")?;
    if options.fullscreen {
        window
            .set_fullscreen(FullscreenType::Desktop)
            .map_err(|e| anyhow!("full screen: {e}"))?;
    }
    let canvas = window
        .into_canvas()
        .build()
        .context("cannot draw in the window")?;
    let creator = canvas.texture_creator();
    let mut screen = Screen {
        creator: &creator,
        texture: None,
        aspect: (4, 3),
        frame: Frame::default(),
        checked_at: None,
    };
    let mut pump = sdl.event_pump().map_err(|e| anyhow!("SDL events: {e}"))?;
    let mut session = Session {
        canvas,
        mouse: sdl.mouse(),
        status,
        held: BTreeSet::new(),
        buttons: 0,
        options,
        frames: 0,
        snapshot_request: None,
    };
    let started = Instant::now();
    let exit = session.main_loop(machine, &mut screen, &mut pump);
    tracing::info!(
        "{} frames drawn in {:.1} s",
        session.frames,
        started.elapsed().as_secs_f64()
    );
    exit
}

impl Session {
    fn main_loop(
        &mut self,
        machine: &mut Machine,
        screen: &mut Screen,
        pump: &mut sdl2::EventPump,
    ) -> anyhow::Result<MachineExit> {
        let mut title = String::new();
        loop {
            let mut present = false;
            let first = if self.status.paused {
                pump.wait_event_timeout(PAUSED_WAIT_MS)
            } else {
                None
            };
            let events: Vec<Event> = first.into_iter().chain(pump.poll_iter()).collect();
            for event in events {
                match self.on_event(event, machine) {
                    Flow::Quit => return Ok(MachineExit::PowerOff),
                    Flow::Present => present = true,
                    Flow::Continue => {}
                }
            }
            if let Some(request) = self.snapshot_request.take() {
                self.serve_snapshot(request, machine, screen);
            }
            if !self.status.paused {
                if let Some(exit) = self.run_slice(machine)? {
                    return Ok(exit);
                }
            }
            self.redraw(machine, screen, present)?;
            let now_title = self.status.title(Instant::now());
            if now_title != title {
                // A title with a NUL cannot happen: it is built from our own strings.
                let _ = self.canvas.window_mut().set_title(&now_title);
                title = now_title;
            }
        }
    }

    /// Save or restore between slices; a restored machine's picture is drawn afresh.
    fn serve_snapshot(
        &mut self,
        request: SnapshotRequest,
        machine: &mut Machine,
        screen: &mut Screen,
    ) {
        if request == SnapshotRequest::Restore {
            // The restored guest has its own idea of what is held: the host lets go of all.
            self.release_all(machine);
        }
        let text = self.options.snapshots.serve(request, machine);
        if request == SnapshotRequest::Restore {
            // The adapter redraws all of a restored picture by itself.
            screen.checked_at = None;
        }
        self.status.say(text, Instant::now());
    }

    /// Run one slice; `Some` when the machine stopped for good.
    fn run_slice(&mut self, machine: &mut Machine) -> anyhow::Result<Option<MachineExit>> {
        let until = machine.board.now_ns().saturating_add(SLICE_NS);
        let exit = machine.run_until(self.options.max_insns, until)?;
        if let Some(audio) = self.options.audio.as_mut() {
            audio.after_slice(machine);
        }
        let out_of_budget = self
            .options
            .max_insns
            .is_some_and(|max| machine.vcpu.retired() >= max);
        Ok(match exit {
            MachineExit::BudgetExhausted if !out_of_budget => None,
            other => Some(other),
        })
    }

    fn on_event(&mut self, event: Event, machine: &mut Machine) -> Flow {
        match event {
            Event::Quit { .. } => return Flow::Quit,
            Event::KeyDown {
                scancode: Some(scancode),
                keymod,
                repeat,
                ..
            } => {
                if let Some(action) = hotkey(scancode, keymod) {
                    if !repeat {
                        self.hotkey(action, machine);
                    }
                } else if let (false, Some(key)) = (repeat, guest_key(scancode)) {
                    // Host repeats are dropped: the guest's keyboard repeats by itself.
                    if self.held.insert(key) {
                        with_kbc(machine, |k| k.key_event(key, true));
                    }
                }
            }
            Event::KeyUp {
                scancode: Some(scancode),
                ..
            } => {
                if let Some(key) = guest_key(scancode).filter(|k| self.held.remove(k)) {
                    with_kbc(machine, |k| k.key_event(key, false));
                }
            }
            Event::MouseMotion { xrel, yrel, .. } if self.status.grabbed => {
                let b = self.buttons;
                with_kbc(machine, |k| k.mouse_event(xrel, yrel, 0, b));
            }
            Event::MouseWheel { y, .. } if self.status.grabbed => {
                let b = self.buttons;
                with_kbc(machine, |k| k.mouse_event(0, 0, y, b));
            }
            Event::MouseButtonDown { mouse_btn, .. } => {
                if !self.status.grabbed {
                    self.set_grab(true);
                } else {
                    self.buttons |= button_bit(mouse_btn);
                    let b = self.buttons;
                    with_kbc(machine, |k| k.mouse_event(0, 0, 0, b));
                }
            }
            Event::MouseButtonUp { mouse_btn, .. } if self.status.grabbed => {
                if self.buttons & button_bit(mouse_btn) == 0 {
                    // The release of the click that grabbed: the guest never saw it pressed.
                    return Flow::Continue;
                }
                self.buttons &= !button_bit(mouse_btn);
                let b = self.buttons;
                with_kbc(machine, |k| k.mouse_event(0, 0, 0, b));
            }
            Event::Window { win_event, .. } => match win_event {
                WindowEvent::FocusLost => self.release_all(machine),
                WindowEvent::Exposed | WindowEvent::SizeChanged(..) => return Flow::Present,
                _ => {}
            },
            _ => {}
        }
        Flow::Continue
    }

    /// Let go of every key and button the guest believes held.
    fn release_all(&mut self, machine: &mut Machine) {
        for key in std::mem::take(&mut self.held) {
            with_kbc(machine, |k| k.key_event(key, false));
        }
        if self.buttons != 0 {
            self.buttons = 0;
            with_kbc(machine, |k| k.mouse_event(0, 0, 0, 0));
        }
    }

    fn set_grab(&mut self, grab: bool) {
        self.status.grabbed = grab;
        self.canvas.window_mut().set_grab(grab);
        self.mouse.set_relative_mouse_mode(grab);
    }

    fn hotkey(&mut self, action: Hotkey, machine: &mut Machine) {
        let now = Instant::now();
        match action {
            Hotkey::ToggleGrab => self.set_grab(!self.status.grabbed),
            Hotkey::TogglePause => {
                self.status.paused = !self.status.paused;
                if let Some(audio) = self.options.audio.as_mut() {
                    audio.set_paused(self.status.paused);
                }
            }
            Hotkey::Reset => {
                self.release_all(machine);
                machine.vcpu.reset();
                machine.board.reset_devices();
                self.status.say("reset", now);
            }
            Hotkey::PowerButton => {
                let pressed = machine
                    .board
                    .device_mut::<nestor_acpi_pm::AcpiPm>()
                    .map(nestor_acpi_pm::AcpiPm::press_power_button);
                let text = match pressed {
                    None => "this machine has no ACPI power button",
                    Some(true) => "power button pressed",
                    Some(false) => "power button: the guest does not listen to it (no ACPI)",
                };
                self.status.say(text, now);
            }
            Hotkey::Screenshot => {
                let text = match self.screenshot(machine) {
                    Ok(path) => format!("screenshot saved to {}", path.display()),
                    Err(e) => format!("no screenshot: {e:#}"),
                };
                tracing::info!("{text}");
                self.status.say(text, now);
            }
            Hotkey::SaveSnapshot => self.snapshot_request = Some(SnapshotRequest::Save),
            Hotkey::RestoreSnapshot => self.snapshot_request = Some(SnapshotRequest::Restore),
            Hotkey::ToggleFullscreen => {
                let window = self.canvas.window_mut();
                let next = match window.fullscreen_state() {
                    FullscreenType::Off => FullscreenType::Desktop,
                    _ => FullscreenType::Off,
                };
                if let Err(e) = window.set_fullscreen(next) {
                    self.status.say(format!("full screen: {e}"), now);
                }
            }
        }
    }

    /// The picture as `nestor-N.png` (the first N not taken) in the screenshot directory.
    fn screenshot(&mut self, machine: &mut Machine) -> anyhow::Result<PathBuf> {
        let dir = &self.options.screenshot_dir;
        let path = (1..10_000)
            .map(|n| dir.join(format!("nestor-{n}.png")))
            .find(|p| !p.exists())
            .context("10000 screenshots already")?;
        nestor_headless::save_screenshot(machine, &path)?;
        Ok(path)
    }

    /// Upload the lines the guest changed (looking at most every [`MIN_FRAME`]), and show
    /// the picture when any did or the window asks for it. An idle screen costs no drawing:
    /// the frame rate follows the guest's writes (and the text cursor's blinking).
    fn redraw(
        &mut self,
        machine: &mut Machine,
        screen: &mut Screen,
        mut present: bool,
    ) -> anyhow::Result<()> {
        let now_ns = machine.board.now_ns();
        let Some(vga) = machine.board.device_mut::<Vga>() else {
            return Ok(());
        };
        let now = Instant::now();
        let due = screen
            .checked_at
            .is_none_or(|t| now.saturating_duration_since(t) >= MIN_FRAME);
        if due {
            screen.checked_at = Some(now);
            if let Some(damage) = vga.render_update(&mut screen.frame, now_ns) {
                let vbe = vga.state().vbe.enabled();
                let (w, h) = (screen.frame.width, screen.frame.height);
                screen.aspect = display_aspect(w, h, vbe);
                screen.upload(damage)?;
                self.frames += 1;
                present = true;
            }
        }
        if present {
            self.present(screen)?;
        }
        Ok(())
    }

    fn present(&mut self, screen: &Screen) -> anyhow::Result<()> {
        self.canvas.set_draw_color(Color::BLACK);
        self.canvas.clear();
        if let Some((texture, _, _)) = &screen.texture {
            let size = self.canvas.output_size().map_err(|e| anyhow!("{e}"))?;
            let (x, y, w, h) = fit(size, screen.aspect);
            self.canvas
                .copy(texture, None, Some(Rect::new(x, y, w, h)))
                .map_err(|e| anyhow!("drawing the picture: {e}"))?;
        }
        self.canvas.present();
        Ok(())
    }
}

impl Screen<'_> {
    /// Copy the damaged lines of the frame into the texture, making a new one (and copying
    /// all) when the mode's size changed.
    fn upload(&mut self, damage: Damage) -> anyhow::Result<()> {
        let frame = &self.frame;
        let (w, h) = (frame.width, frame.height);
        if w == 0 || h == 0 {
            return Ok(());
        }
        let mut lines = (damage.y, damage.height);
        if !matches!(&self.texture, Some((_, tw, th)) if (*tw, *th) == (w, h)) {
            let texture = self
                .creator
                .create_texture_streaming(PixelFormatEnum::RGB24, w, h)
                .context("cannot make a texture for the picture")?;
            self.texture = Some((texture, w, h));
            lines = (0, h);
        }
        let (y, height) = (lines.0.min(h), lines.1.min(h - lines.0.min(h)));
        let pitch = w as usize * 3;
        let bytes = frame
            .rgb
            .get(y as usize * pitch..(y + height) as usize * pitch)
            .context("damaged lines outside the picture")?;
        if let (Some((texture, _, _)), true) = (self.texture.as_mut(), height > 0) {
            texture
                .update(Some(Rect::new(0, y as i32, w, height)), bytes, pitch)
                .context("cannot upload the picture")?;
        }
        Ok(())
    }
}

/// What the loop does after an event.
enum Flow {
    Continue,
    /// Show the picture again (the window was uncovered or resized).
    Present,
    Quit,
}

fn with_kbc(machine: &mut Machine, f: impl FnOnce(&mut I8042)) {
    if let Some(kbc) = machine.board.device_mut::<I8042>() {
        f(kbc);
    }
}

fn button_bit(button: MouseButton) -> u8 {
    match button {
        MouseButton::Left => buttons::LEFT,
        MouseButton::Right => buttons::RIGHT,
        MouseButton::Middle => buttons::MIDDLE,
        MouseButton::X1 => buttons::BUTTON4,
        MouseButton::X2 => buttons::BUTTON5,
        MouseButton::Unknown => 0,
    }
}
