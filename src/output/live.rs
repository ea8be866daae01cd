//! The full-screen terminal that live views draw on (crossterm): the alternate screen in raw
//! mode, whole frames of lines, and key presses.
//!
//! The terminal is given back on every way out: when the [`Screen`] is dropped (a normal end
//! or an error), from a panic hook (before the panic message is printed, so that it lands on
//! the normal screen), and from a SIGINT/SIGTERM handler. The signal path matters because
//! the run's second signal exits the process at once, without unwinding; the handler only
//! makes async-signal-safe calls (`tcsetattr`, `write`) with the terminal settings saved
//! before raw mode. A Ctrl-C typed in raw mode is a key press, which the view handles.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Once, OnceLock};
use std::time::Duration;

use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use crossterm::style::{Attribute, Print, SetAttribute};
use crossterm::terminal::{self, ClearType};
use crossterm::{cursor, execute, queue};
use signal_hook::SigId;

/// What leaves the alternate screen and shows the cursor again.
const LEAVE: &[u8] = b"\x1b[?1049l\x1b[?25h";

/// The terminal settings from before raw mode, for the signal handler.
static SAVED: OnceLock<libc::termios> = OnceLock::new();
/// Set while a [`Screen`] holds the terminal; cleared when it is given back, so that nothing
/// draws after and nothing is restored twice (or without a screen).
static OPEN: AtomicBool = AtomicBool::new(false);

/// A key the live view acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// q, Esc or Ctrl-C.
    Quit,
    Char(char),
}

/// The alternate screen in raw mode, for as long as it lives.
pub struct Screen {
    signals: Vec<SigId>,
}

impl Screen {
    /// Takes over the terminal on stdout.
    pub fn enter() -> io::Result<Screen> {
        let stdout = io::stdout();
        if !stdout.is_terminal() {
            return Err(io::Error::other("stdout is not a terminal"));
        }
        let mut saved = std::mem::MaybeUninit::<libc::termios>::uninit();
        // SAFETY: tcgetattr fills the termios it is given on success, checked before use.
        if unsafe { libc::tcgetattr(libc::STDOUT_FILENO, saved.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: tcgetattr succeeded, so the value is initialised.
        let _ = SAVED.set(unsafe { saved.assume_init() });
        install_panic_hook();
        let mut signals = Vec::new();
        for signal in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: the action makes only async-signal-safe calls (see restore_from_signal).
            signals.push(unsafe { signal_hook::low_level::register(signal, restore_from_signal) }?);
        }
        OPEN.store(true, Ordering::SeqCst);
        let screen = Screen { signals };
        terminal::enable_raw_mode()?;
        execute!(io::stdout(), terminal::EnterAlternateScreen, cursor::Hide)?;
        Ok(screen)
    }

    /// Rows and columns.
    pub fn size(&self) -> (usize, usize) {
        let (cols, rows) = terminal::size().unwrap_or((80, 24));
        (usize::from(rows), usize::from(cols))
    }

    /// Replaces the screen with `lines`, each cut to the width; those in `bold` (indices)
    /// are shown in reverse video when `highlight` is set.
    pub fn draw(&self, lines: &[String], bold: &[usize], highlight: bool) -> io::Result<()> {
        if !OPEN.load(Ordering::SeqCst) {
            return Ok(());
        }
        let (rows, cols) = self.size();
        let mut out = io::stdout().lock();
        queue!(out, cursor::MoveTo(0, 0), terminal::Clear(ClearType::All))?;
        for (i, line) in lines.iter().take(rows).enumerate() {
            let text: String = line.chars().take(cols).collect();
            let reverse = highlight && bold.contains(&i);
            queue!(out, cursor::MoveTo(0, i as u16))?;
            if reverse {
                queue!(out, SetAttribute(Attribute::Reverse))?;
                queue!(out, Print(format!("{text:<cols$}")))?;
                queue!(out, SetAttribute(Attribute::Reset))?;
            } else {
                queue!(out, Print(text))?;
            }
        }
        out.flush()
    }

    /// The next key pressed within `timeout`, if any.
    pub fn key(&self, timeout: Duration) -> io::Result<Option<Key>> {
        if !event::poll(timeout)? {
            return Ok(None);
        }
        let Event::Key(key) = event::read()? else {
            return Ok(None);
        };
        if key.kind != KeyEventKind::Press {
            return Ok(None);
        }
        Ok(match key.code {
            KeyCode::Char('c') if key.modifiers.contains(KeyModifiers::CONTROL) => Some(Key::Quit),
            KeyCode::Char('q') | KeyCode::Esc => Some(Key::Quit),
            KeyCode::Char(c) => Some(Key::Char(c)),
            _ => None,
        })
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        for id in self.signals.drain(..) {
            signal_hook::low_level::unregister(id);
        }
        restore();
    }
}

/// Gives the terminal back (once).
fn restore() {
    if !OPEN.swap(false, Ordering::SeqCst) {
        return;
    }
    let _ = execute!(io::stdout(), terminal::LeaveAlternateScreen, cursor::Show);
    let _ = terminal::disable_raw_mode();
}

/// The signal-handler form of `restore`: only async-signal-safe calls.
fn restore_from_signal() {
    if !OPEN.swap(false, Ordering::SeqCst) {
        return;
    }
    if let Some(saved) = SAVED.get() {
        // SAFETY: tcsetattr and write are async-signal-safe; both read memory that lives for
        // the whole program.
        unsafe {
            libc::tcsetattr(libc::STDOUT_FILENO, libc::TCSANOW, saved);
            libc::write(libc::STDOUT_FILENO, LEAVE.as_ptr().cast(), LEAVE.len());
        }
    }
}

/// Restores the terminal before the default hook prints the panic.
fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}
