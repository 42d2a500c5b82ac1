//! The details an action needs before it is done: a reason always, a duration for bans.

use super::{DANGER, Desk, SMALL};
use crate::{
    pages::INPUT,
    protocol::{BanTarget, ModAction},
    rules,
};
use leptos::{ev::SubmitEvent, prelude::*};

/// An action waiting for its details.
#[derive(Clone, Debug, PartialEq)]
pub enum Form {
    Kick {
        room: String,
        member: u64,
        nickname: String,
    },
    /// `who`: how the target is shown ("alice in Lobby", "hash 0a1b…").
    Ban {
        target: BanTarget,
        who: String,
    },
    Delete {
        room: String,
        seq: u64,
        text: String,
    },
    Close {
        room: String,
        name: String,
    },
    LinkDiscord {
        room: String,
        name: String,
    },
}

impl Form {
    fn title(&self) -> String {
        match self {
            Form::Kick { nickname, .. } => format!("Remove {nickname} from the room"),
            Form::Ban { who, .. } => format!("Ban {who}"),
            Form::Delete { .. } => "Delete a message".to_owned(),
            Form::Close { name, .. } => format!("Close {name}"),
            Form::LinkDiscord { name, .. } => format!("Bridge {name} to a Discord channel"),
        }
    }

    fn confirm(&self) -> &'static str {
        match self {
            Form::Kick { .. } => "Confirm kick",
            Form::Ban { .. } => "Confirm ban",
            Form::Delete { .. } => "Confirm delete",
            Form::Close { .. } => "Confirm close",
            Form::LinkDiscord { .. } => "Link",
        }
    }

    /// What the person concerned is told, where they are told anything.
    fn reason_help(&self) -> &'static str {
        match self {
            Form::Kick { .. } => "They see it when they are removed. They may join again.",
            Form::Ban { .. } => "They see it, with the end of the ban, whenever they try to come back.",
            Form::Delete { .. } => "For the audit log: nobody else sees it.",
            Form::Close { .. } => "Everyone in the room sees it.",
            Form::LinkDiscord { .. } => {
                "In Discord, with developer mode on, right-click the channel and copy its id. The bot must see the channel and may post there."
            }
        }
    }

    /// What the one text field asks for.
    fn field(&self) -> (&'static str, &'static str) {
        match self {
            Form::LinkDiscord { .. } => ("Discord channel id", "Give the channel's id: a number."),
            _ => ("Reason", "Give a reason: it goes to the audit log."),
        }
    }

    fn action(self, reason: String, duration: &str, joins: bool) -> Result<ModAction, &'static str> {
        Ok(match self {
            Form::Kick { room, member, .. } => ModAction::Kick { room, member, reason },
            Form::Ban { target, .. } => {
                ModAction::Ban { target, reason, duration_secs: rules::ban_duration(duration)? }
            }
            Form::Delete { room, seq, .. } => ModAction::DeleteMessage { room, seq, reason },
            Form::Close { room, .. } => ModAction::CloseRoom { room, reason },
            Form::LinkDiscord { room, .. } => ModAction::LinkDiscord { room, channel_id: reason, joins },
        })
    }
}

#[component]
pub fn ActionDialog(desk: Desk) -> impl IntoView {
    move || desk.form.get().map(|form| view! { <Dialog desk form /> })
}

#[component]
fn Dialog(desk: Desk, form: Form) -> impl IntoView {
    let reason = RwSignal::new(String::new());
    let duration = RwSignal::new("7d".to_owned());
    let problem = RwSignal::new(None::<String>);
    let is_ban = matches!(form, Form::Ban { .. });
    let is_link = matches!(form, Form::LinkDiscord { .. });
    let joins = RwSignal::new(false);
    let (label, missing) = form.field();
    let title = form.title();
    let confirm = form.confirm();
    let help = form.reason_help();
    let quoted = match &form {
        Form::Delete { text, .. } => Some(text.clone()),
        _ => None,
    };
    let on_submit = {
        let form = form.clone();
        move |event: SubmitEvent| {
            event.prevent_default();
            let text = reason.get_untracked().trim().to_owned();
            if text.is_empty() {
                problem.set(Some(missing.to_owned()));
                return;
            }
            match form.clone().action(text, &duration.get_untracked(), joins.get_untracked()) {
                Ok(action) => {
                    problem.set(None);
                    desk.act(action);
                }
                Err(sentence) => problem.set(Some(sentence.to_owned())),
            }
        }
    };
    // Escape puts the dialog away, wherever the focus is.
    let escape = window_event_listener(leptos::ev::keydown, move |event| {
        if event.key() == "Escape" {
            desk.form.set(None);
        }
    });
    on_cleanup(move || escape.remove());
    // The server's refusal of this action shows here, next to what can be changed.
    let error = move || problem.get().or_else(|| desk.outcome.get().and_then(Result::err));
    view! {
        <div class="fixed inset-x-0 bottom-0 z-30 flex justify-center p-4 sm:inset-0 sm:items-center sm:bg-stone-950/30">
            <section
                role="dialog"
                aria-labelledby="action-title"
                class="w-full max-w-md rounded-2xl border border-stone-200 bg-white p-5 shadow-2xl dark:border-stone-700 dark:bg-stone-900"
            >
                <h2 id="action-title" class="text-lg font-semibold"><bdi>{title}</bdi></h2>
                {quoted.map(|text| view! {
                    <blockquote class="mt-2 line-clamp-3 border-l-4 border-stone-300 pl-3 text-sm text-stone-600 dark:border-stone-700 dark:text-stone-400">
                        <bdi>{text}</bdi>
                    </blockquote>
                })}
                <form on:submit=on_submit class="mt-4 space-y-4">
                    <div>
                        <label for="action-reason" class="block text-sm font-medium">{label}</label>
                        <input
                            id="action-reason"
                            name="reason"
                            autocomplete="off"
                            maxlength="300"
                            autofocus
                            bind:value=reason
                            aria-describedby="action-reason-help"
                            class=format!("mt-1 {INPUT}")
                        />
                        <p id="action-reason-help" class="mt-1 text-xs text-stone-500 dark:text-stone-400">{help}</p>
                    </div>
                    {is_ban.then(|| view! {
                        <div>
                            <label for="action-duration" class="block text-sm font-medium">"Duration"</label>
                            <input
                                id="action-duration"
                                name="duration"
                                autocomplete="off"
                                list="action-durations"
                                bind:value=duration
                                aria-describedby="action-duration-help"
                                class=format!("mt-1 {INPUT}")
                            />
                            <datalist id="action-durations">
                                <option value="1h"></option>
                                <option value="1d"></option>
                                <option value="7d"></option>
                                <option value="30d"></option>
                                <option value="permanent"></option>
                            </datalist>
                            <p id="action-duration-help" class="mt-1 text-xs text-stone-500 dark:text-stone-400">
                                "30m, 12h, 7d, 4w… or “permanent”. Members are banned with their address (IPv6: its /64)."
                            </p>
                        </div>
                    })}
                    {is_link.then(|| view! {
                        <label class="flex items-center gap-2 text-sm">
                            <input type="checkbox" bind:checked=joins />
                            "Also tell Discord when people join and leave"
                        </label>
                    })}
                    <p role="alert" class="text-sm font-medium text-red-700 empty:hidden dark:text-red-400">{error}</p>
                    <div class="flex justify-end gap-2">
                        <button type="button" class=SMALL on:click=move |_| desk.form.set(None)>"Cancel"</button>
                        <button type="submit" class=DANGER disabled=move || desk.busy.get()>{confirm}</button>
                    </div>
                </form>
            </section>
        </div>
    }
}
