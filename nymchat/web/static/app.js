"use strict";
// Placeholder (the page replaces it): says whether the API answers `status`.
const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/api`);
socket.addEventListener("open", () => {
  socket.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "status" }));
});
socket.addEventListener("message", (event) => {
  const line = document.createElement("p");
  line.dataset.test = "status";
  line.textContent = event.data;
  document.getElementById("app").append(line);
});
