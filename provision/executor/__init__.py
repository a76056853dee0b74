"""The executor: a plan's changes applied to Graph, journaled, resumable.

The journal is created from the plan, and ``dispatch.execute(client, journal)`` works
through every unfinished change in ``$batch`` requests paced by the client's shared pacer.
One module per job:

- ``dispatch``: ``execute()`` itself: forming batches (at most one change per user, users
  independent but for ``turns``), sending them, journaling each batch's answers in one
  transaction;
- ``answers``: the answer rules as tables: every write answer and read-back classified once,
  and the action for each (change kind, answer class) pair;
- ``actions``: carrying those actions out on the users' chains (done, retry, read back,
  fail and skip the rest of the user's chain);
- ``chains``: each user's changes as a chain worked through in planned order;
- ``schedule``: what to send next: writes ready now, read-backs due, timers;
- ``turns``: a mobile number the roster gives several users, written for them in roster
  order (the one order across users);
- ``readback``: what a read of a user's phones says about a change (pure);
- ``journal``: the SQLite run journal and its durability protocol;
- ``settings``, ``progress``, ``outcome``: tuning and batch sizing, progress events, how a
  run ended.

Importing ``provision.executor.dispatch`` loads the Graph client (msgraph); the journal and
read-back modules do not.
"""
