# cluster_admin_test.sh -- the first administrator of a new cluster made
# through the Raft log: `sprig serve --cluster FILE --admin-user admin
# --admin-password-env VAR` (cconf; docs/cluster.md "Start a cluster"),
# authentication on, empty storages (no seed):
#
#  - every node of the first start says the administrator is ready, and
#    the administrator logs in on each of the three;
#  - through the leader the administrator makes user bob, allowed only
#    database app; bob writes a key through the leader; on each node
#    (following off: the node itself checks) bob reads it but is refused
#    creating a database and `cluster status` (exit 6, the action named);
#  - node 4 starts empty, without --admin-user, is added (`cluster add`)
#    and catches up from the log (no snapshot: the default threshold):
#    the administrator and bob log in there, bob still refused.
#
# usage: sh cluster_admin_test.sh PATH/TO/sprig SCRATCH_DIR
BIN=$1
T=$2
export CL_ADMIN_PW="admin-pw-4711" CL_BOB_PW="bob-pw-0815"
CL_SERVE_ARGS="--admin-user admin --admin-password-env CL_ADMIN_PW"
. "$(dirname "$0")/cluster_lib.sh"
cl_init 4
CL_LOGIN="--user admin --password-env CL_ADMIN_PW"

for i in 1 2 3; do cl_config "$i" "1 2 3" true; done
for i in 1 2 3; do cl_start "$i"; done

leader=$(cl_first_leader "1 2 3")
[ -n "$leader" ] || { bad "no leader elected"; cl_finish cluster_admin; }
echo "leader: node $leader"
for i in 1 2 3; do
    for t in $(seq 100); do
        grep -q "administrator 'admin' ready" "$T/n$i.log" && break
        sleep 0.2
    done
    grep -q "administrator 'admin' ready" "$T/n$i.log" ||
        bad "node $i did not say the administrator is ready"
done
sp "$leader" db create app --schema app >/dev/null || bad "db create"
sp "$leader" admin user create bob --password-env CL_BOB_PW >/dev/null ||
    bad "create bob"
sp "$leader" admin group create apps >/dev/null || bad "group create"
sp "$leader" admin group grant apps '*' sprig.db.app >/dev/null ||
    bad "grant"
sp "$leader" admin user add-group bob apps >/dev/null || bad "add-group"

bob() { # bob NODE ARGS...: the CLI as bob against node NODE, following off
    n=$1
    shift
    SPRIG_NO_FOLLOW=1 "$BIN" --url "$(url "$n")" --db app --user bob \
        --password-env CL_BOB_PW "$@"
}

# bob_checks NODE: bob reads his key of app there (once it reached the
# node), is refused
# a new database and cluster status (exit 6, the action named)
bob_checks() {
    for t in $(seq 50); do
        bob "$1" kv get k 2>/dev/null | grep -q '"v"' && break
        sleep 0.2
    done
    bob "$1" kv get k 2>"$T/err" | grep -q '"v"' ||
        bad "bob cannot read app on node $1: $(cat "$T/err")"
    bob "$1" db create other --schema app >/dev/null 2>"$T/err"
    [ $? = 6 ] && grep -q "database.create" "$T/err" ||
        bad "bob's db create on node $1 was not refused: $(cat "$T/err")"
    bob "$1" cluster status >/dev/null 2>"$T/err"
    [ $? = 6 ] && grep -q "cluster.read" "$T/err" ||
        bad "bob's cluster status on node $1 was not refused: $(cat "$T/err")"
}

bob "$leader" kv set k v >/dev/null 2>"$T/err" ||
    bad "bob's write on the leader: $(cat "$T/err")"
for i in 1 2 3; do
    sp "$i" cluster status >/dev/null 2>"$T/err" ||
        bad "the administrator on node $i: $(cat "$T/err")"
    bob_checks "$i"
done

# node 4: no --admin-user, an empty directory; it gets the administrator
# from the log
cl_config 4 "1 2 3" false
CL_SERVE_ARGS=" "
cl_start 4
sp "$leader" cluster add 4 "$(raft_addr 4)" "$(url 4)" >"$T/add" 2>&1 ||
    bad "cluster add 4: $(cat "$T/add")"
for t in $(seq 100); do
    sp 4 cluster status >/dev/null 2>&1 && break
    sleep 0.2
done
sp 4 cluster status >/dev/null 2>"$T/err" ||
    bad "the administrator on node 4: $(cat "$T/err")"
bob_checks 4
grep -q "installed\|snapshot" "$T/n4.log" &&
    echo "(node 4's log mentions a snapshot)"
cl_finish cluster_admin
