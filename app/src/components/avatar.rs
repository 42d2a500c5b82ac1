//! A coloured initial for each nickname. The colour depends on the room too, so the same
//! nickname does not look the same (and cannot be followed) from room to room.

use leptos::prelude::*;

/// Literal class names, so Tailwind finds them in this file.
const COLOURS: [&str; 12] = [
    "bg-rose-600",
    "bg-orange-600",
    "bg-amber-600",
    "bg-lime-700",
    "bg-emerald-600",
    "bg-teal-600",
    "bg-cyan-700",
    "bg-sky-600",
    "bg-indigo-600",
    "bg-violet-600",
    "bg-fuchsia-700",
    "bg-pink-600",
];

#[component]
pub fn Avatar(#[prop(into)] room: String, #[prop(into)] nickname: String) -> impl IntoView {
    // FNV-1a: stable across server and browser, no dependency.
    let hash = room
        .bytes()
        .chain([0])
        .chain(nickname.bytes())
        .fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    let colour = COLOURS[hash as usize % COLOURS.len()];
    // Upper-cased by CSS: the browser has the case tables, the bundle need not carry them.
    let initial: String = nickname.chars().next().map(String::from).unwrap_or_default();
    view! {
        <span
            aria-hidden="true"
            class=format!("{colour} inline-flex size-8 shrink-0 select-none items-center uppercase justify-center rounded-full text-sm font-semibold text-white")
        >
            {initial}
        </span>
    }
}
