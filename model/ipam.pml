/*
 * model/ipam.pml — a small, exhaustively checked model of the IPAM v2 rules (/docs/ipam-model.md).
 *
 * Three voters (nodes 0, 1, 2), one address range that node 0 owns at the start, NA addresses.
 * Node 0 allocates (rule 2: unconfirmed -> holdingsWrite -> confirmed with Q-1 acks); every node
 * is a voter (rule 4); node 1 is node 0's heir and may at any moment run the fenced two-phase
 * reclaim (rule 6) — the failure detector is abstracted away entirely, so the heir may also
 * "reclaim" a node that is perfectly alive — and then allocates from the range it took over.
 * Rule 5 on ownership loss, release (rule 8), reserved addresses (rule 1).
 *
 * Faults: any message can be lost at any time (lose(s, d)): that includes every partition —
 * any subset of directed links down for any time, asymmetric ones too — and full buffers; at
 * most MAXFLIGHT messages are in flight in the whole network (a bound on the search, see the
 * doc). Any node can crash (its volatile state and the messages in flight to it are lost, its
 * durable state is kept) and restart.
 *
 * Safety (checked after every step, see check()):
 *   P1  no address is active (confirmed or conflict) at two nodes at once;
 *   P2  an acknowledged (confirmed) allocation is never dropped unless it was released.
 *
 * Broken-rule switches (model/run.sh checks that each broken variant has a counterexample):
 *   BUG_FEWER_ACKS        rule 2: confirm with Q-2 acks instead of Q-1
 *   BUG_KEEP_UNCONFIRMED  rule 5: an unconfirmed allocation becomes a conflict (kept), not dropped
 *   BUG_DROP_CONFIRMED    rule 5: a confirmed allocation is dropped, not kept as a conflict
 *   BUG_NO_RESERVE        rule 1: allocation ignores other nodes' stored holdings
 *   BUG_NO_HOLDINGS_CHECK rule 4: the voter does not check "in no other node's stored holdings"
 *   BUG_NO_FENCE          rule 4: the voter does not check "in a range the owner owns"
 *   BUG_SKIP_PHASE1       rule 6: the heir commits the takeover without phase 1
 *   BUG_HEIR_IGNORES_ACKS rule 6: phase 2 reserves only the heir's own copy of d's holdings
 *   BUG_ADOPT_GOSSIPED_TAKEOVER  the heir allocates from a range as soon as its ring names it
 *                         the owner (its takeover entry came back by gossip or survived a crash
 *                         in phase 1), without having completed phase 2
 * The voter's holdings check (rule 4, second half) and the fence (rule 4 first half + rule 6)
 * are two independent safety mechanisms: the fence/phase-1/phase-2 switches are caught only
 * together with BUG_NO_HOLDINGS_CHECK, and `model/run.sh --all` shows each mechanism alone
 * suffices in this model. See docs/ipam-model.md.
 * Bounds (override with -D): MAXALLOC allocations per node, MAXCRASH crashes in a run, CAP
 * messages per directed channel, MAXFLIGHT messages in flight overall.
 */

#define N   3
#define NA  2
#define Q   2            /* N/2 + 1 */
#ifdef BUG_FEWER_ACKS
#define ACKS_NEEDED (Q - 2)
#else
#define ACKS_NEEDED (Q - 1)
#endif

#ifndef MAXALLOC
#define MAXALLOC 3
#endif
#ifndef MAXCRASH
#define MAXCRASH 2
#endif
#ifndef CAP
#define CAP 2
#endif
#ifndef MAXFLIGHT
#define MAXFLIGHT 2      /* messages in flight in the whole network at once */
#endif

/* allocation state of one address at one node */
#define FREE 0
#define UNC  1           /* recorded, in own holdings, not yet acknowledged to the caller */
#define CONF 2           /* acknowledged to the caller */
#define CFL  3           /* conflict: confirmed, range lost, still reserved */

#define BIT(a)      (1 << (a))
#define IX(i, j)    ((i) * N + (j))
#define LX(s, d)    ((s) * (N - 1) + (d) - ((d) > (s)))   /* link index, s != d */
#define AX(i, a)    ((i) * NA + (a))
#define OWNS(i)     (rown[i] == (i))
/* the heir allocates from a taken-over range only after its own phase 2, even when the takeover
 * entry reached it earlier (gossiped back by a voter, or after a crash in phase 1) */
#ifdef BUG_ADOPT_GOSSIPED_TAKEOVER
#define MAYALLOC(i) OWNS(i)
#else
#define MAYALLOC(i) (OWNS(i) && ((i) != 1 || phase == 2))
#endif
#define ACTIVE(s)   ((s) == CONF || (s) == CFL)
#define ANYUNC(i)   (st[AX(i, 0)] == UNC || st[AX(i, 1)] == UNC)
/* rule 1: addresses node i must not hand out = every other node's stored holdings */
#define RESERVED(i) (hs[IX(i, (i + 1) % N)] | hs[IX(i, (i + 2) % N)])

mtype = { HW, HACK, HNACK, TO, TOACK };

#define CANSEND(s, d) (inflight < MAXFLIGHT && nfull(ch[LX(s, d)]))
/* an answer is lost when the network is full (message loss is allowed anyway) */
#define REPLY(s, d, t, a1, a2, a3, a4, a5) \
  if \
  :: CANSEND(s, d) -> ch[LX(s, d)]!t(a1, a2, a3, a4, a5); inflight++ \
  :: inflight >= MAXFLIGHT -> skip \
  :: full(ch[LX(s, d)]) -> skip \
  fi

/* ch[LX(src, dst)] */
chan ch[N * (N - 1)] = [CAP] of { mtype, byte, byte, byte, byte, byte };

/* ---- durable state (survives a crash) */
byte rown[N];            /* each node's ring view of the one range: owner ... */
byte rver[N];            /* ... and version (0 = initial, 1 = the takeover, stride abstracted) */
byte hv[N * N];          /* hv[IX(i, j)]: version of j's holdings as stored by i (i == j: own) */
byte hs[N * N];          /* hs[IX(i, j)]: the addresses of that register, as a bit mask */
byte st[2 * NA];         /* nodes 0 and 1 allocate: st[AX(i, a)] */
byte uv[2 * NA];         /* own holdings version at which an unconfirmed allocation was made */
byte phase;              /* heir: 0 idle, 1 phase 1 running (volatile), 2 committed */

/* ---- volatile state (lost in a crash) */
byte ackv[N * N];        /* ackv[IX(i, j)]: highest version of i's holdings j acknowledged */
byte toack;              /* heir, phase 1: bit j = voter j answered takeoverAck */
byte dirty[2];           /* bit j: j has not been sent i's latest holdings (gossip) */

/* ---- environment */
byte inflight;           /* messages in all channels (a function of their contents) */
bit up[N];
byte allocs[2];
byte crashes;

/* ---- ghost: acknowledged and not released */
bit ghost[2 * NA];

/* scratch, always 0 between steps (check() clears it); not hidden so that -DBFS works */
byte t_a, t_m, t_k, t_ok, t_changed;
byte m1, m2, m3, m4, m5;
mtype mt;

inline check() {
  /* P1 */
  assert(!(ACTIVE(st[AX(0, 0)]) && ACTIVE(st[AX(1, 0)])));
  assert(!(ACTIVE(st[AX(0, 1)]) && ACTIVE(st[AX(1, 1)])));
  /* P2 */
  assert(!ghost[AX(0, 0)] || ACTIVE(st[AX(0, 0)]));
  assert(!ghost[AX(0, 1)] || ACTIVE(st[AX(0, 1)]));
  assert(!ghost[AX(1, 0)] || ACTIVE(st[AX(1, 0)]));
  assert(!ghost[AX(1, 1)] || ACTIVE(st[AX(1, 1)]));
  t_a = 0; t_m = 0; t_k = 0; t_ok = 0; t_changed = 0;
  mt = 0; m1 = 0; m2 = 0; m3 = 0; m4 = 0; m5 = 0
}

inline bump(i) {             /* own holdings changed: new version, gossip to everyone */
  hv[IX(i, i)]++;
  dirty[i] = 7 & ~BIT(i)
}

/* rule 5 at node i, which just learnt it no longer owns the range */
inline rule5(i) {
  printf("  node %d: lost the range (rule 5)\n", i);
  t_changed = 0;
  t_a = 0;
  do
  :: t_a < NA ->
     if
  :: st[AX(i, t_a)] == UNC ->
#ifdef BUG_KEEP_UNCONFIRMED
        st[AX(i, t_a)] = CFL
#else
        st[AX(i, t_a)] = FREE; hs[IX(i, i)] = hs[IX(i, i)] & ~BIT(t_a); t_changed = 1
#endif
  :: st[AX(i, t_a)] == CONF ->
#ifdef BUG_DROP_CONFIRMED
        st[AX(i, t_a)] = FREE; hs[IX(i, i)] = hs[IX(i, i)] & ~BIT(t_a); t_changed = 1
#else
        st[AX(i, t_a)] = CFL
#endif
  :: else -> skip
     fi;
     t_a++
  :: else -> break
  od;
  if
  :: t_changed -> bump(i)
  :: else -> skip
  fi
}

/* CRDT merge of one ring entry (eo, ev) into node d's view; rule 5 if d lost the range */
inline merge_entry(d, eo, ev) {
  if
  :: (ev > rver[d] || (ev == rver[d] && eo > rown[d])) ->
     t_ok = (rown[d] == d && eo != d);
     rown[d] = eo; rver[d] = ev;
     if
  :: t_ok && d < 2 -> rule5(d)
  :: else -> skip
     fi
  :: else -> skip
  fi
}

/* rule 2: confirm every unconfirmed allocation of node i that Q-1 other voters acknowledged */
inline confirm(i) {
  t_a = 0;
  do
  :: t_a < NA ->
     if
  :: st[AX(i, t_a)] == UNC &&
        (ackv[IX(i, (i + 1) % N)] >= uv[AX(i, t_a)]) + (ackv[IX(i, (i + 2) % N)] >= uv[AX(i, t_a)]) >= ACKS_NEEDED ->
        st[AX(i, t_a)] = CONF; ghost[AX(i, t_a)] = 1;
        printf("  node %d: address %d CONFIRMED (acknowledged to the caller)\n", i, t_a)
  :: else -> skip
     fi;
     t_a++
  :: else -> break
  od;
  t_a = 0
}

inline commit_takeover() {
  printf("  node 1: takeover committed; holdings of node 0 reserved: mask %d\n", hs[IX(1, 0)]);
  merge_entry(1, 1, 1);
  phase = 2
}

/* ---- actions of the allocating nodes (i = 0, 1) */
inline alloc(i, a) {
  d_step {
  (up[i] && MAYALLOC(i) && allocs[i] < MAXALLOC && st[AX(i, a)] == FREE
#ifndef BUG_NO_RESERVE
   && !(RESERVED(i) & BIT(a))
#endif
  ) ->
    printf("node %d: allocate address %d (unconfirmed, holdings v%d)\n", i, a, hv[IX(i, i)] + 1);
    allocs[i]++;
    hv[IX(i, i)]++; hs[IX(i, i)] = hs[IX(i, i)] | BIT(a);
    uv[AX(i, a)] = hv[IX(i, i)];
    dirty[i] = 7 & ~BIT(i);
    st[AX(i, a)] = UNC;
    confirm(i);             /* with ACKS_NEEDED == 0 this confirms at once */
    check()
  }
}

inline timeout_unconfirmed(i, a) {      /* confirmTimeout: fail the caller, release the address */
  d_step { (up[i] && st[AX(i, a)] == UNC) -> printf("node %d: confirm timeout, address %d released\n", i, a);
    st[AX(i, a)] = FREE; hs[IX(i, i)] = hs[IX(i, i)] & ~BIT(a); bump(i); check() }
}

inline release(i, a) {                  /* release an allocation or a conflict */
  d_step { (up[i] && ACTIVE(st[AX(i, a)])) -> printf("node %d: release address %d\n", i, a);
    st[AX(i, a)] = FREE; ghost[AX(i, a)] = 0; hs[IX(i, i)] = hs[IX(i, i)] & ~BIT(a); bump(i); check() }
}

/* holdingsWrite i -> j: news (gossip) or a retry while something is unconfirmed */
inline send_hw(i, j) {
  d_step {
    (up[i] && CANSEND(i, j) && ((dirty[i] & BIT(j)) || ANYUNC(i))) ->
    ch[LX(i, j)]!HW(i, hv[IX(i, i)], hs[IX(i, i)], rown[i], rver[i]); inflight++;
    printf("node %d -> %d: holdingsWrite v%d mask %d (entry owner %d v%d)\n", i, j, hv[IX(i, i)], hs[IX(i, i)], rown[i], rver[i]);
    dirty[i] = dirty[i] & ~BIT(j)
  }
}

/* ---- the heir (node 1) */
inline start_reclaim() {
  d_step {
    (up[1] && phase == 0) -> printf("node 1: start reclaim of node 0\n");
#ifdef BUG_SKIP_PHASE1
    commit_takeover()
#else
    phase = 1; toack = 0
#endif
    ; check()
  }
}

inline abort_reclaim() {                /* no quorum within confirmTimeout */
  d_step { (phase == 1) -> phase = 0; toack = 0; printf("node 1: reclaim aborted\n") }
}

inline send_to(j) {
  d_step { (up[1] && phase == 1 && !(toack & BIT(j)) && CANSEND(1, j)) ->
    ch[LX(1, j)]!TO(0, 1, 1, 0, 0); inflight++; printf("node 1 -> %d: takeover\n", j) }
}

/* ---- delivery s -> d */
inline deliver(s, d) {
  d_step {
    nempty(ch[LX(s, d)]) ->
    ch[LX(s, d)]?mt, m1, m2, m3, m4, m5; inflight--;
    printf("deliver %d -> %d: %e(%d, %d, %d, %d)\n", s, d, mt, m1, m2, m3, m4);
    if
    :: !up[d] -> skip                                 /* the receiver is down: lost */
    :: else ->
       if
       :: mt == HW ->                                 /* rule 4, owner m1 = s */
          merge_entry(d, m4, m5);
          t_m = m3 & ~hs[IX(d, m1)];                  /* addresses new to this voter */
#ifdef BUG_NO_HOLDINGS_CHECK
          t_k = 0;
#else
          t_k = hs[IX(d, (m1 + 1) % N)] | hs[IX(d, (m1 + 2) % N)];   /* others' holdings */
#endif
#ifdef BUG_NO_FENCE
          t_ok = ((t_m & t_k) == 0);
#else
          t_ok = (t_m == 0 || (rown[d] == m1 && (t_m & t_k) == 0));
#endif
          if
          :: t_ok ->
             if
             :: m2 > hv[IX(d, m1)] -> hv[IX(d, m1)] = m2; hs[IX(d, m1)] = m3
             :: else -> skip
             fi;
             printf("  node %d accepts\n", d);
             REPLY(d, s, HACK, m1, m2, 0, 0, 0)
          :: else ->
             printf("  node %d refuses\n", d);
             REPLY(d, s, HNACK, m1, m2, rown[d], rver[d], 0)
          fi
       :: mt == HACK ->
          if
          :: m2 > ackv[IX(d, s)] -> ackv[IX(d, s)] = m2
          :: else -> skip
          fi;
          if
          :: d < 2 -> confirm(d)
          :: else -> skip
          fi
       :: mt == HNACK ->
          merge_entry(d, m3, m4)
       :: mt == TO ->                                 /* takeover(dead m1, entry m2 v m3) */
          merge_entry(d, m2, m3);
          REPLY(d, s, TOACK, m1, hv[IX(d, m1)], hs[IX(d, m1)], 0, 0)
       :: mt == TOACK ->                              /* at the heir: holdings of m1 as stored */
#ifndef BUG_HEIR_IGNORES_ACKS
          if
          :: m2 > hv[IX(d, m1)] -> hv[IX(d, m1)] = m2; hs[IX(d, m1)] = m3
          :: else -> skip
          fi;
#endif
          if
          :: phase == 1 ->
             toack = toack | BIT(s);
             if
             :: ((toack & 1) != 0) + ((toack & 4) != 0) >= Q - 1 -> commit_takeover()
             :: else -> skip
             fi
          :: else -> skip
          fi
       fi
    fi;
    mt = 0; m1 = 0; m2 = 0; m3 = 0; m4 = 0; m5 = 0;
    check()
  }
}

/* ---- faults */
inline flush(c) {
  do
  :: nempty(c) -> c?mt, m1, m2, m3, m4, m5; inflight--
  :: empty(c) -> break
  od;
  skip
}

inline crash(i) {
  d_step {
    (up[i] && crashes < MAXCRASH) ->
    up[i] = 0; crashes++; printf("node %d: crash\n", i);
    flush(ch[LX((i + 1) % N, i)]); flush(ch[LX((i + 2) % N, i)]);
    mt = 0; m1 = 0; m2 = 0; m3 = 0; m4 = 0; m5 = 0;
    ackv[IX(i, 0)] = 0; ackv[IX(i, 1)] = 0; ackv[IX(i, 2)] = 0;
    if
    :: i == 1 && phase == 1 -> phase = 0
    :: else -> skip
    fi;
    if
    :: i == 1 -> toack = 0
    :: else -> skip
    fi;
    if
    :: i < 2 -> dirty[i] = 7 & ~BIT(i)   /* after the restart push-pull sends everything again */
    :: else -> skip
    fi
  }
}

inline restart(i) {
  d_step { (!up[i]) -> up[i] = 1; printf("node %d: restart\n", i) }
}

/* a message lost on the way: a link that is down (in one direction or both), a full buffer */
inline lose(s, d) {
  d_step { nempty(ch[LX(s, d)]) -> ch[LX(s, d)]?mt, m1, m2, m3, m4, m5; inflight--;
           printf("lost %d -> %d: %e\n", s, d, mt); mt = 0; m1 = 0; m2 = 0; m3 = 0; m4 = 0; m5 = 0 }
}

active proctype world() {
  /* node 0 created the cluster and owns the range; everyone knows that */
  up[0] = 1; up[1] = 1; up[2] = 1;
end_world:            /* stopping here is fine: every budget is spent and every channel drained */
  do
  :: alloc(0, 0)
  :: alloc(0, 1)
  :: alloc(1, 0)
  :: alloc(1, 1)
  :: timeout_unconfirmed(0, 0)
  :: timeout_unconfirmed(0, 1)
  :: timeout_unconfirmed(1, 0)
  :: timeout_unconfirmed(1, 1)
  :: release(0, 0)
  :: release(0, 1)
  :: release(1, 0)
  :: release(1, 1)
  :: send_hw(0, 1)
  :: send_hw(0, 2)
  :: send_hw(1, 0)
  :: send_hw(1, 2)
  :: start_reclaim()
  :: abort_reclaim()
  :: send_to(0)
  :: send_to(2)
  :: deliver(0, 1)
  :: deliver(0, 2)
  :: deliver(1, 0)
  :: deliver(1, 2)
  :: deliver(2, 0)
  :: deliver(2, 1)
  :: crash(0)
  :: crash(1)
  :: crash(2)
  :: restart(0)
  :: restart(1)
  :: restart(2)
  :: lose(0, 1)
  :: lose(0, 2)
  :: lose(1, 0)
  :: lose(1, 2)
  :: lose(2, 0)
  :: lose(2, 1)
  od
}
