use super::use_hydrated;
use crate::browser;
use leptos::prelude::*;

/// `14:05` in the reader's time zone, the full date and time on hover; empty in the server's
/// HTML, which cannot know that zone.
#[component]
pub fn LocalTime(at: i64, #[prop(optional, into)] class: &'static str) -> impl IntoView {
    let hydrated = use_hydrated();
    view! {
        <time
            class=format!("text-xs tabular-nums text-stone-600 dark:text-stone-400 {class}")
            title=move || hydrated.get().then(|| browser::full_date(at))
        >
            {move || hydrated.get().then(|| browser::local_time(at))}
        </time>
    }
}
