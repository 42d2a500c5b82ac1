//! `/mod`: the moderator console. Rendered on the server from a snapshot, then live: its socket
//! watches the server (`mod_watch`) and every change arrives as a fresh snapshot. Actions are the
//! `moderate` server function, which checks the session cookie on every call.

mod dialog;
mod records;
mod rooms;

use crate::{
    api::SIGN_OUT_PATH,
    components::{Flame, LinkStatus, StatusLine},
    protocol::{ModAction, ModSnapshot},
};
use dialog::{ActionDialog, Form};
use leptos::prelude::*;

/// Small secondary buttons.
const SMALL: &str = "shrink-0 whitespace-nowrap rounded-md border border-stone-300 bg-white px-2 py-1 text-xs font-medium hover:bg-stone-100 disabled:opacity-50 dark:border-stone-700 dark:bg-stone-900 dark:hover:bg-stone-800";
/// Small buttons for actions against people.
const DANGER: &str = "shrink-0 whitespace-nowrap rounded-md border border-red-300 bg-white px-2 py-1 text-xs font-medium text-red-800 hover:bg-red-50 disabled:opacity-50 dark:border-red-900 dark:bg-stone-900 dark:text-red-300 dark:hover:bg-red-950";
/// Section boxes.
const PANEL: &str =
    "rounded-2xl border border-stone-200 bg-white p-4 shadow-sm dark:border-stone-800 dark:bg-stone-900";

/// The console's state: the server's picture, the socket, the action being filled in, and how
/// the last action went.
#[derive(Clone, Copy)]
pub struct Desk {
    snapshot: RwSignal<ModSnapshot>,
    status: RwSignal<LinkStatus>,
    form: RwSignal<Option<Form>>,
    outcome: RwSignal<Option<Result<String, String>>>,
    busy: RwSignal<bool>,
    /// Rooms whose recent messages are shown: kept here, because rooms are drawn again with
    /// every snapshot.
    expanded: RwSignal<Vec<String>>,
}

impl Desk {
    fn new(snapshot: ModSnapshot) -> Self {
        Self {
            snapshot: RwSignal::new(snapshot),
            status: RwSignal::new(LinkStatus::Connecting),
            form: RwSignal::new(None),
            outcome: RwSignal::new(None),
            busy: RwSignal::new(false),
            expanded: RwSignal::new(Vec::new()),
        }
    }

    /// Asks for `form`'s details (a reason, a duration) before acting.
    fn ask(&self, form: Form) {
        self.outcome.set(None);
        self.form.set(Some(form));
    }

    /// Sends an action to the server; the outcome shows in the status line, and the change
    /// itself arrives with the next snapshot.
    fn act(&self, action: ModAction) {
        self.busy.set(true);
        #[cfg(feature = "hydrate")]
        {
            let desk = *self;
            leptos::task::spawn_local(async move {
                let result = crate::api::moderate(action).await;
                desk.busy.set(false);
                match result {
                    Ok(sentence) => {
                        desk.form.set(None);
                        desk.outcome.set(Some(Ok(sentence)));
                    }
                    Err(error) => desk.outcome.set(Some(Err(error.message))),
                }
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = action;
    }
}

#[component]
pub fn Console(snapshot: ModSnapshot) -> impl IntoView {
    let desk = Desk::new(snapshot);
    #[cfg(feature = "hydrate")]
    live::watch(desk);
    let status = desk.status.read_only();
    view! {
        <div class="min-h-dvh">
            <header class="sticky top-0 z-20 border-b border-stone-200 bg-white/90 backdrop-blur dark:border-stone-800 dark:bg-stone-900/90">
                <div class="mx-auto flex max-w-7xl items-center gap-3 px-4 py-2 sm:gap-4">
                    <a href="/" aria-label="Burner" class="flex items-center gap-2 font-bold text-orange-700 dark:text-orange-400">
                        <Flame class="size-5" />
                        <span class="hidden sm:inline">"Burner"</span>
                    </a>
                    <h1 class="shrink-0 text-base font-semibold">"Moderator console"</h1>
                    <div class="min-w-0 flex-1"><StatusLine status /></div>
                    <form action=SIGN_OUT_PATH method="post">
                        <button type="submit" class=SMALL>"Sign out"</button>
                    </form>
                </div>
            </header>
            <Outcome desk />
            <main class="mx-auto grid max-w-7xl gap-6 px-4 py-6 xl:grid-cols-[minmax(0,3fr)_minmax(0,2fr)]">
                <div class="min-w-0 space-y-6">
                    <records::Reports desk />
                    <rooms::Rooms desk />
                </div>
                <div class="min-w-0 space-y-6">
                    <records::Search desk />
                    <records::Bans desk />
                    <records::Audit desk />
                </div>
            </main>
            <ActionDialog desk />
        </div>
    }
}

/// How the last action went: a confirmation, or why it failed.
#[component]
fn Outcome(desk: Desk) -> impl IntoView {
    view! {
        <div class="mx-auto max-w-7xl px-4">
            <p role="status" class="mt-3 text-sm font-medium text-emerald-800 empty:hidden dark:text-emerald-300">
                {move || desk.outcome.get().and_then(Result::ok)}
            </p>
            <p role="alert" class="mt-3 text-sm font-medium text-red-700 empty:hidden dark:text-red-400">
                {move || if desk.form.read().is_none() { desk.outcome.get().and_then(Result::err) } else { None }}
            </p>
        </div>
    }
}

#[cfg(feature = "hydrate")]
mod live {
    use super::Desk;
    use crate::{
        components::LinkStatus,
        protocol::{ClientMsg, ErrorCode, ServerMsg},
        ws_client::{Event, Socket},
    };
    use leptos::prelude::*;

    /// Opens the console's socket and keeps the snapshot current until the page goes.
    pub fn watch(desk: Desk) {
        let socket = Socket::open(None, move |socket, event| match event {
            Event::Status(status) => desk.status.set(status),
            Event::Message(ServerMsg::Welcome { .. }) => {
                socket.send(&ClientMsg::ModWatch {});
            }
            Event::Message(ServerMsg::ModSnapshot { snapshot }) => desk.snapshot.set(snapshot),
            Event::Message(ServerMsg::Error { code: ErrorCode::PermissionDenied, .. }) => {
                socket.stop();
                desk.status.set(LinkStatus::Closed("Your session has ended: reload the page to sign in again.".into()));
            }
            Event::Message(_) => {}
        });
        let socket = StoredValue::new_local(socket);
        on_cleanup(move || {
            let _ = socket.try_with_value(Socket::stop);
        });
    }
}
