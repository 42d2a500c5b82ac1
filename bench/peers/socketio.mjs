// Socket.IO peer: `join` with a room name joins it (answered with `joined`); every `msg` goes
// to every member of the sender's room, the sender included.
import { createServer } from "node:http";
import { Server } from "socket.io";

const port = Number(process.argv[2] || 3102);
const http = createServer();
const io = new Server(http, { transports: ["websocket"], perMessageDeflate: false });
io.on("connection", (socket) => {
  socket.on("join", (room) => {
    socket.data.room = room;
    socket.join(room);
    socket.emit("joined");
  });
  socket.on("msg", (text) => io.to(socket.data.room).emit("msg", text));
});
http.listen(port, "127.0.0.1");
