//! The connection state as people see it.

use crate::browser;
use leptos::prelude::*;

#[derive(Clone, Debug, PartialEq)]
pub enum LinkStatus {
    /// No connection wanted yet (before joining).
    Idle,
    Connecting,
    Online,
    /// Dropped; the next attempt is at `retry_at` (ms since the epoch).
    Reconnecting {
        retry_at: f64,
    },
    /// Closed for good, with the reason.
    Closed(String),
}

/// A one-line status with a coloured dot; updates its countdown every second.
#[component]
pub fn StatusLine(status: ReadSignal<LinkStatus>) -> impl IntoView {
    let (tick, set_tick) = signal(0u32);
    #[cfg(feature = "hydrate")]
    {
        let handle = set_interval_with_handle(
            move || set_tick.update(|t| *t = t.wrapping_add(1)),
            std::time::Duration::from_secs(1),
        );
        on_cleanup(move || {
            if let Ok(handle) = handle {
                handle.clear();
            }
        });
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = set_tick;
    let text = move || {
        match status.get() {
            LinkStatus::Idle => String::new(),
            LinkStatus::Connecting => "Connecting…".to_owned(),
            LinkStatus::Online => "Connected".to_owned(),
            LinkStatus::Reconnecting { retry_at } => {
                // Only the countdown follows the clock: any other status is not worked out
                // again every second.
                tick.track();
                let seconds = ((retry_at - browser::now_ms()) / 1000.0).ceil() as i64;
                if seconds >= 1 {
                    format!("Connection lost. Reconnecting in {seconds}s…")
                } else {
                    "Reconnecting…".to_owned()
                }
            }
            LinkStatus::Closed(reason) => reason,
        }
    };
    let dot = move || match status.get() {
        LinkStatus::Online => "bg-emerald-500",
        // The dot pulses while a connection is being tried, not through the wait before the
        // next try: the countdown already shows that, and a page left offline for an hour should
        // not be painting sixty frames a second all the while.
        LinkStatus::Connecting => "bg-amber-500 animate-pulse motion-reduce:animate-none",
        LinkStatus::Reconnecting { .. } => "bg-amber-500",
        LinkStatus::Closed(_) => "bg-red-600",
        LinkStatus::Idle => "hidden",
    };
    // On a phone "Connected" is the dot alone (its words stay for screen readers); anything
    // else is written out in full, on two lines if need be, never cut to a fragment.
    let words = move || {
        if status.get() == LinkStatus::Online { "sr-only sm:not-sr-only sm:truncate" } else { "sm:truncate" }
    };
    view! {
        <p role="status" class="flex min-w-0 items-center gap-2 text-xs text-stone-600 dark:text-stone-300" title=text>
            <span aria-hidden="true" class=move || format!("size-2 shrink-0 rounded-full {}", dot())></span>
            <span class=words>{text}</span>
        </p>
    }
}
