// The room-management page: talks to /api/... with the token pasted by the user, kept in
// this tab's sessionStorage only. User text is only ever set with textContent/value.
'use strict';

const TOKEN_KEY = 'chatcap.token';
const LISTS = ['members', 'managers', 'presenters'];
const $ = (id) => document.getElementById(id);

let categories = [];
let current = null; // the room shown in the detail panel (its RoomInfo)

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

// One API call; resolves with the JSON body (null for 204), rejects with an Error that
// carries the HTTP status and the API's error code and message.
async function api(method, path, body) {
  const headers = { Authorization: 'Bearer ' + token() };
  const init = { method, headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 204) return null;
  let data = null;
  try {
    data = await res.json();
  } catch (_) {
    data = null;
  }
  if (!res.ok) {
    const err = new Error(data && data.message ? data.message : res.status + ' ' + res.statusText);
    err.status = res.status;
    err.code = data && data.code;
    throw err;
  }
  return data;
}

function say(text, isError) {
  const s = $('status');
  s.textContent = text;
  s.className = isError ? 'error' : 'ok';
}

// Run an action, reporting its failure on the status line.
async function attempt(what, action) {
  try {
    await action();
  } catch (e) {
    say(what + ' failed: ' + e.message, true);
    if (e.status === 401) showSignIn();
  }
}

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}

function showSignIn() {
  $('token-form').hidden = false;
  $('signed-in').hidden = true;
  $('app').hidden = true;
}

function showApp() {
  $('token-form').hidden = true;
  $('signed-in').hidden = false;
  $('app').hidden = false;
}

function categoryName(id) {
  const c = categories.find((c) => c.id === id);
  return c ? c.name : '#' + id;
}

async function loadCategories() {
  const data = await api('GET', '/api/categories');
  categories = data.categories;
  const search = $('search-category');
  search.replaceChildren(el('option', 'any', { value: '' }));
  const create = $('new-category');
  create.replaceChildren();
  for (const c of categories) {
    search.append(el('option', c.name, { value: String(c.id) }));
    if (c.may_create) create.append(el('option', c.name, { value: String(c.id) }));
  }
  const none = create.options.length === 0;
  $('create-form').hidden = none;
  $('no-create').hidden = !none;
}

async function loadRooms() {
  const q = new URLSearchParams();
  const name = $('search-name').value.trim();
  if (name) q.set('name', name);
  if ($('search-category').value) q.set('category', $('search-category').value);
  if ($('search-mine').checked) q.set('mine', 'true');
  const data = await api('GET', '/api/rooms' + (q.toString() ? '?' + q : ''));
  const body = $('rooms').tBodies[0];
  body.replaceChildren();
  for (const r of data.rooms) {
    const row = el('tr', null, { 'data-room-id': String(r.id) });
    row.append(el('td', r.id));
    const open = el('button', r.name, { type: 'button', class: 'open-room' });
    open.addEventListener('click', () => attempt('Opening the room', () => openRoom(r.id)));
    const nameCell = el('td');
    nameCell.append(open);
    row.append(nameCell);
    row.append(el('td', categoryName(r.category)));
    row.append(el('td', r.privacy + (r.disabled ? ' (disabled)' : '')));
    row.append(el('td', r.kind));
    row.append(el('td', r.roles.join(', ')));
    body.append(row);
  }
  return data.rooms;
}

async function openRoom(id) {
  const r = await api('GET', '/api/rooms/' + id);
  current = r;
  $('room').hidden = false;
  $('room').setAttribute('data-room-id', String(r.id));
  $('room-title').textContent = r.name + ' (#' + r.id + ', ' + categoryName(r.category) + ')';
  $('edit-name').value = r.name;
  $('edit-description').value = r.description;
  $('edit-privacy').value = r.privacy;
  $('edit-kind').value = r.kind;
  $('edit-disabled').checked = r.disabled;
  resetDelete();
  await loadRoles();
}

async function loadRoles() {
  const hidden = $('lists-hidden');
  for (const list of LISTS) $('list-' + list).replaceChildren();
  let roles;
  try {
    roles = await api('GET', '/api/rooms/' + current.id + '/roles');
  } catch (e) {
    hidden.textContent = 'Lists not shown: ' + e.message;
    hidden.hidden = false;
    return;
  }
  hidden.hidden = true;
  for (const list of LISTS) {
    const ul = $('list-' + list);
    for (const u of roles[list]) {
      const li = el('li', u.name, { 'data-user-id': String(u.id) });
      const remove = el('button', 'remove', { type: 'button', class: 'remove' });
      remove.addEventListener('click', () =>
        attempt('Removing ' + u.name, async () => {
          await api('DELETE', '/api/rooms/' + current.id + '/' + list + '/' + u.id);
          say('Removed ' + u.name + ' from ' + list + '.');
          await loadRoles();
        }),
      );
      li.append(remove);
      ul.append(li);
    }
  }
}

function resetDelete() {
  const b = $('delete-room');
  b.textContent = 'Delete room';
  b.removeAttribute('data-armed');
}

async function suggestUsers() {
  const name = $('add-user').value.trim();
  if (name.length < 2) return;
  const data = await api('GET', '/api/users?' + new URLSearchParams({ name, limit: '10' }));
  const list = $('user-suggestions');
  list.replaceChildren();
  for (const u of data.users) list.append(el('option', null, { value: u.name }));
}

function wire() {
  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $('token').value.trim());
    $('token').value = '';
    start();
  });

  $('forget-token').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    say('Token forgotten.');
    showSignIn();
  });

  $('search-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    attempt('Searching', async () => {
      const rooms = await loadRooms();
      say(rooms.length + ' room(s).');
    });
  });

  $('create-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    attempt('Creating the room', async () => {
      const room = await api('POST', '/api/rooms', {
        name: $('new-name').value.trim(),
        category: Number($('new-category').value),
        privacy: $('new-privacy').value,
        kind: $('new-kind').value,
        description: $('new-description').value,
      });
      $('new-name').value = '';
      $('new-description').value = '';
      say('Created room ' + room.name + '.');
      await loadRooms();
      await openRoom(room.id);
    });
  });

  $('edit-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    attempt('Saving the room', async () => {
      const room = await api('PATCH', '/api/rooms/' + current.id, {
        name: $('edit-name').value.trim(),
        description: $('edit-description').value,
        privacy: $('edit-privacy').value,
        kind: $('edit-kind').value,
        disabled: $('edit-disabled').checked,
      });
      say('Saved room ' + room.name + '.');
      await loadRooms();
      await openRoom(room.id);
    });
  });

  $('delete-room').addEventListener('click', () => {
    const b = $('delete-room');
    if (!b.hasAttribute('data-armed')) {
      b.setAttribute('data-armed', '');
      b.textContent = 'Click again to delete';
      return;
    }
    attempt('Deleting the room', async () => {
      await api('DELETE', '/api/rooms/' + current.id);
      say('Deleted room ' + current.name + '.');
      current = null;
      $('room').hidden = true;
      await loadRooms();
    }).finally(resetDelete);
  });

  $('add-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const user = $('add-user').value.trim();
    const list = $('add-list').value;
    attempt('Adding ' + user, async () => {
      await api('PUT', '/api/rooms/' + current.id + '/' + list + '/' + encodeURIComponent(user));
      $('add-user').value = '';
      say('Added ' + user + ' to ' + list + '.');
      await loadRoles();
    });
  });

  $('add-user').addEventListener('input', () => attempt('Looking users up', suggestUsers));
}

async function start() {
  if (!token()) {
    showSignIn();
    return;
  }
  try {
    await loadCategories();
    await loadRooms();
    showApp();
    say('Ready.');
  } catch (e) {
    if (e.status === 401) sessionStorage.removeItem(TOKEN_KEY);
    showSignIn();
    say('Sign-in failed: ' + e.message, true);
  }
}

wire();
start();
