# apppw %pre: the system group must exist before rpm sets apppw-ctl's group.
getent group apppw >/dev/null || groupadd --system apppw
