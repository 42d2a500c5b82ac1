use super::use_hydrated;
use crate::browser;
use leptos::prelude::*;

/// `14:05` in the reader's time zone; empty in the server's HTML, which cannot know that zone.
#[component]
pub fn LocalTime(at: i64) -> impl IntoView {
    let hydrated = use_hydrated();
    view! {
        <time class="text-xs tabular-nums text-stone-500 dark:text-stone-400">
            {move || hydrated.get().then(|| browser::local_time(at))}
        </time>
    }
}
