use super::use_hydrated;
use crate::browser;
use leptos::{either::Either, prelude::*};

/// `14:05` in the reader's time zone, the full date and time on hover. The server cannot know
/// that zone: its HTML carries only the moment (`data-at`), and once the page is live one pass
/// fills every such time in (`browser::fill_local_times`), instead of each time watching for
/// the page to come alive (two effects per message cost a page of 50 messages most of its
/// hydration). Drawn in the browser later, a time is written at once.
#[component]
pub fn LocalTime(at: i64, #[prop(optional, into)] class: &'static str) -> impl IntoView {
    let class = format!("text-xs tabular-nums text-stone-600 dark:text-stone-400 {class}");
    if use_hydrated().get_untracked() {
        Either::Left(view! { <time class=class title=browser::full_date(at)>{browser::local_time(at)}</time> })
    } else {
        Either::Right(view! { <time class=class data-at=at.to_string()></time> })
    }
}
