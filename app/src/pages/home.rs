//! `/`: what Burner is, the live room directory, and the form to create a room.

use super::{BUTTON, INPUT};
use crate::{
    api::CREATE_ROOM_PATH,
    components::{BanNotice, Flame, FullBadge, OneWayBadge},
    protocol::RoomSummary,
    rules,
};
use leptos::prelude::*;

#[component]
pub fn HomePage(rooms: Vec<RoomSummary>, form_error: Option<String>, banned: Option<String>) -> impl IntoView {
    view! {
        <div class="mx-auto max-w-5xl px-4 py-8 sm:py-14">
            <header class="max-w-2xl">
                <p class="flex items-center gap-2 text-lg font-bold tracking-tight text-orange-700 dark:text-orange-400">
                    <Flame class="size-6" />
                    "Burner"
                </p>
                <h1 class="mt-3 text-3xl font-bold tracking-tight sm:text-4xl">"Anonymous chat rooms. No accounts, just a nickname."</h1>
                <p class="mt-3 text-stone-600 dark:text-stone-400">
                    "Pick a room, pick a name for this visit, and talk. In "
                    <strong class="font-semibold text-stone-800 dark:text-stone-200">"one-way"</strong>
                    " rooms you never see your own messages again, only everyone else's."
                </p>
            </header>
            <main class="mt-10 grid gap-8 md:grid-cols-[minmax(0,1fr)_22rem] md:items-start">
                <section aria-labelledby="rooms-title">
                    <h2 id="rooms-title" class="text-lg font-semibold">"Rooms"</h2>
                    // A banned visitor's socket would be refused: the directory stays as rendered.
                    <Directory initial=rooms live=banned.is_none() />
                </section>
                {match banned {
                    Some(sentence) => leptos::either::Either::Left(view! { <BanNotice sentence /> }),
                    None => leptos::either::Either::Right(view! { <CreateRoomForm error=form_error /> }),
                }}
            </main>
            <noscript>
                <p class="mt-10 rounded-lg bg-amber-100 p-4 text-amber-900">
                    "You can browse and create rooms without JavaScript, but chatting needs it: turn it on to join a room."
                </p>
            </noscript>
        </div>
    }
}

/// The listed rooms, live: the server sends occupancy changes as they happen.
#[component]
fn Directory(initial: Vec<RoomSummary>, live: bool) -> impl IntoView {
    let rooms = RwSignal::new(initial);
    #[cfg(feature = "hydrate")]
    if live {
        live::watch(rooms);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = live;
    view! {
        <p class="mt-4 text-stone-500 dark:text-stone-400" class:hidden=move || !rooms.read().is_empty()>"No rooms yet: create the first one."</p>
        <ul class="mt-4 grid gap-3 sm:grid-cols-2">
            <For each=move || rooms.get() key=|room| (room.slug.clone(), room.members) children=|room| view! { <RoomCard room /> } />
        </ul>
    }
}

#[component]
fn RoomCard(room: RoomSummary) -> impl IntoView {
    let full = room.members >= room.limit;
    let people = if room.limit == 1 { "person" } else { "people" };
    view! {
        <li>
            <a
                href=format!("/r/{}", room.slug)
                class="group block h-full rounded-xl border border-stone-200 bg-white p-4 shadow-sm transition hover:border-orange-400 hover:shadow focus-visible:outline focus-visible:outline-2 focus-visible:outline-orange-600 dark:border-stone-800 dark:bg-stone-900 dark:hover:border-orange-500"
            >
                <div class="flex items-start justify-between gap-3">
                    <h3 class="min-w-0 truncate font-semibold group-hover:text-orange-700 dark:group-hover:text-orange-300">
                        <bdi>{room.name.clone()}</bdi>
                    </h3>
                    <div class="flex shrink-0 gap-1">
                        {room.one_way.then(|| view! { <OneWayBadge /> })}
                        {full.then(|| view! { <FullBadge /> })}
                    </div>
                </div>
                <p class="mt-2 text-sm text-stone-600 dark:text-stone-400">
                    <span class="tabular-nums font-medium text-stone-800 dark:text-stone-200">{room.members}" / "{room.limit}</span>
                    " "{people}
                </p>
            </a>
        </li>
    }
}

/// A plain form: it posts to the `create_room` server function, which sends the browser on to
/// the new room, or back here with the refusal. The same with or without JavaScript.
#[component]
fn CreateRoomForm(error: Option<String>) -> impl IntoView {
    let label = "block text-sm font-medium text-stone-800 dark:text-stone-200";
    let help = "mt-1 text-xs text-stone-500 dark:text-stone-400";
    view! {
        <section
            aria-labelledby="create-title"
            class="rounded-2xl border border-stone-200 bg-white p-5 shadow-sm dark:border-stone-800 dark:bg-stone-900"
        >
            <h2 id="create-title" class="text-lg font-semibold">"Create a room"</h2>
            <form action=CREATE_ROOM_PATH method="post" class="mt-4 space-y-4">
                <div>
                    <label for="room-name" class=label>"Room name"</label>
                    <input id="room-name" name="name" required autocomplete="off" placeholder="Night owls" class=format!("mt-1 {INPUT}") />
                    <p class=help>{format!("Up to {} characters.", rules::ROOM_NAME_MAX_CHARS)}</p>
                </div>
                <div>
                    <label for="room-limit" class=label>"Participant limit"</label>
                    <input
                        id="room-limit"
                        name="limit"
                        type="number"
                        inputmode="numeric"
                        min=rules::ROOM_LIMIT_MIN
                        max=rules::ROOM_LIMIT_MAX
                        value="10"
                        required
                        class=format!("mt-1 {INPUT}")
                    />
                    <p class=help>"From 2 to 1000 people; nobody gets in past it."</p>
                </div>
                <div class="flex items-start gap-3">
                    <input id="room-one-way" name="one_way" type="checkbox" value="on" aria-describedby="one-way-help" class="mt-1 size-4 accent-orange-600" />
                    <div>
                        <label for="room-one-way" class=label>"One-way"</label>
                        <p id="one-way-help" class=help>"Nobody sees their own messages, only everyone else's."</p>
                    </div>
                </div>
                <div>
                    <label for="room-profanity" class=label>"Profanity filter"</label>
                    <select id="room-profanity" name="profanity" aria-describedby="profanity-help" class=format!("mt-1 {INPUT}")>
                        <option value="mask" selected>"Mask: swear words become ****"</option>
                        <option value="block">"Block: such messages are refused"</option>
                        <option value="off">"Off: anything goes"</option>
                    </select>
                    <p id="profanity-help" class=help>"Chosen now, for the life of the room."</p>
                </div>
                <div class="flex items-start gap-3">
                    <input id="room-listed" name="listed" type="checkbox" value="on" checked class="mt-1 size-4 accent-orange-600" />
                    <label for="room-listed" class=label>"Show in the room list"</label>
                </div>
                <p role="alert" class="text-sm font-medium text-red-700 empty:hidden dark:text-red-400">{error}</p>
                <button type="submit" class=format!("w-full {BUTTON}")>"Create room"</button>
            </form>
        </section>
    }
}

#[cfg(feature = "hydrate")]
mod live {
    use super::*;
    use crate::{
        protocol::{ClientMsg, LOBBY_SLUG, ServerMsg},
        ws_client::{Event, Socket},
    };

    /// Opens the page's socket, watches the directory, and stops when the page goes.
    pub fn watch(rooms: RwSignal<Vec<RoomSummary>>) {
        let socket = Socket::open(None, move |socket, event| match event {
            Event::Message(ServerMsg::Welcome { .. }) => {
                socket.send(&ClientMsg::WatchDirectory {});
            }
            Event::Message(ServerMsg::Directory { rooms: list }) => rooms.set(list),
            Event::Message(ServerMsg::DirectoryChanged { updated, removed }) => rooms.update(|list| {
                list.retain(|room| !removed.contains(&room.slug));
                for room in updated {
                    match list.iter_mut().find(|r| r.slug == room.slug) {
                        Some(known) => *known = room,
                        None => list.push(room),
                    }
                }
                list.sort_by(|a, b| {
                    (b.slug == LOBBY_SLUG).cmp(&(a.slug == LOBBY_SLUG)).then(b.members.cmp(&a.members))
                });
            }),
            _ => {}
        });
        let socket = StoredValue::new_local(socket);
        on_cleanup(move || {
            let _ = socket.try_with_value(Socket::stop);
        });
    }
}
