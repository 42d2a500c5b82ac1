//! Small pieces the pages are built from.

mod avatar;
mod badges;
mod ban;
mod flame;
mod message_text;
mod status;
mod time;

pub use avatar::{Avatar, identicon};
pub use badges::{DiscordBadge, FullBadge, OneWayBadge};
pub use ban::BanNotice;
pub use flame::Flame;
pub use message_text::MessageText;
pub use status::{LinkStatus, StatusLine};
pub use time::LocalTime;

use leptos::prelude::*;

/// True once the page runs in the browser. What depends on the browser (local clock times,
/// storage) renders only then, so the server's HTML and the first browser render agree.
#[derive(Clone, Copy)]
pub struct Hydrated(pub ReadSignal<bool>);

pub fn provide_hydrated() {
    let (hydrated, set_hydrated) = signal(false);
    Effect::new(move |_| {
        crate::browser::fill_local_times();
        set_hydrated.set(true);
    });
    provide_context(Hydrated(hydrated));
}

pub fn use_hydrated() -> ReadSignal<bool> {
    use_context::<Hydrated>().map_or_else(|| signal(false).0, |h| h.0)
}
