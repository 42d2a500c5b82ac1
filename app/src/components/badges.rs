use super::Flame;
use leptos::prelude::*;

#[component]
pub fn OneWayBadge() -> impl IntoView {
    view! {
        <span
            title="One-way room: you never see your own messages"
            class="inline-flex items-center gap-1 rounded-full bg-orange-100 px-2 py-0.5 text-xs font-medium text-orange-800 dark:bg-orange-500/15 dark:text-orange-300"
        >
            <Flame class="size-3" />
            "One-way"
        </span>
    }
}

#[component]
pub fn FullBadge() -> impl IntoView {
    view! {
        <span class="rounded-full bg-stone-200 px-2 py-0.5 text-xs font-medium text-stone-700 dark:bg-stone-700 dark:text-stone-200">
            "Full"
        </span>
    }
}

/// Marks a message written in the bridged Discord channel: its author is a Discord user, not
/// a member here (only the server sets it, so nobody here can pass for one).
#[component]
pub fn DiscordBadge() -> impl IntoView {
    view! {
        <span
            title="Written in the bridged Discord channel"
            class="shrink-0 rounded bg-indigo-100 px-1.5 text-[0.6875rem] font-medium text-indigo-800 dark:bg-indigo-500/15 dark:text-indigo-300"
        >
            "Discord"
        </span>
    }
}
