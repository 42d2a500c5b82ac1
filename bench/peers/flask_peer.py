# Flask-SocketIO peer (the stack of the original one-way chat): `join` with a room name joins
# it (answered with `joined`); every `msg` goes to every member of the sender's room, the
# sender included. Threading mode with simple-websocket, Flask-SocketIO's default.
import sys

from flask import Flask, request
from flask_socketio import SocketIO, emit, join_room

app = Flask(__name__)
socketio = SocketIO(app, async_mode="threading", logger=False, engineio_logger=False)
rooms = {}


@socketio.on("join")
def join(room):
    rooms[request.sid] = room
    join_room(room)
    emit("joined")


@socketio.on("msg")
def msg(text):
    socketio.emit("msg", text, to=rooms.get(request.sid))


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 3104
    socketio.run(app, host="127.0.0.1", port=port, allow_unsafe_werkzeug=True, log_output=False)
