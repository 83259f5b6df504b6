# apppw %pre: the system group and the account apppw-ctl becomes before it opens the store.
getent group apppw >/dev/null || groupadd --system apppw
getent passwd apppw >/dev/null || useradd --system --gid apppw --no-create-home \
    --home-dir /nonexistent --shell /sbin/nologin --comment "apppw store" apppw
