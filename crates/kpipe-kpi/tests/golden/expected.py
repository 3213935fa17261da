# The expected KPI rows of the golden test (../golden.rs), worked out from the rules of docs/kpis.md
# and docs/schema.md ("KPI output") in a separate implementation that shares nothing with the
# crate: Python's decimal module, one function per rule.
#
#   python3 expected.py metrics.csv > expected.txt
#   python3 expected.py metrics.csv rates   # money converted to USD at EUR = 1.08, plus the
#                                           # blended_cpl definition (EXPECTED_CONVERTED)
import csv, sys, datetime as dt
from decimal import Decimal as D, getcontext, ROUND_HALF_EVEN
getcontext().prec = 120
Q = D(1).scaleb(-18)

def rnd(x): return x.quantize(Q, rounding=ROUND_HALF_EVEN)
def fmt(x):
    if x is None: return '-'
    s = format(x, 'f')
    if '.' in s: s = s.rstrip('0').rstrip('.')
    if s in ('-0', ''): s = '0'
    return s

def day(s): return dt.date.fromisoformat(s)
rows = []
with open(sys.argv[1]) as f:
    for r in csv.DictReader(f):
        r['date'] = day(r['date']); r['value'] = D(r['value'])
        rows.append(r)
RATES = None
if len(sys.argv) > 2:
    # report currency USD, EUR -> USD at 1.08
    RATES = ('USD', {'EUR': D('1.08'), 'USD': D(1)})

ADD = {'reach': 'unique', 'users': 'unique', 'new_users': 'unique', 'returning_users': 'unique', 'followers': 'snapshot'}
LEVELS = ["account","organization","page","property","portal","campaign_group","campaign","ad_set","ad","creative","post"]
def level_rank(l): return (LEVELS.index(l), '') if l in LEVELS else (len(LEVELS), l)

def T(m, flt=None): return ('t', m, flt, False)
def S(m): return ('t', m, None, True)
def ADDx(a, b): return ('+', a, b)
def SUBx(a, b): return ('-', a, b)
def K(a, k): return ('k', a, D(k))
HS = ('platform', {'hubspot'})
SOCIAL = ('channel', {'Organic Social', 'Paid Social'})
LI_FB = ('platform', {'linkedin', 'facebook'})
def sum_of(*ms):
    e = T(ms[0])
    for m in ms[1:]: e = ADDx(e, T(m))
    return e
ENG = ('c', (T('engagements'), sum_of('likes', 'comments', 'shares', 'clicks')))
KPIS = [
 ('ctr','consideration','ratio', T('clicks'), T('impressions')),
 ('cpc','consideration','currency', T('spend'), T('clicks')),
 ('cpm','awareness','currency', K(T('spend'), 1000), T('impressions')),
 ('cpl','decision','currency', T('spend'), T('leads')),
 ('cpa','decision','currency', T('spend'), T('conversions')),
 ('engagement_rate','consideration','ratio', ENG, T('impressions')),
 ('content_engagement_rate','consideration','ratio', sum_of('likes','comments','shares'), T('reach')),
 ('frequency','awareness','count', T('impressions'), T('reach')),
 ('cost_per_reach','awareness','currency', T('spend'), T('reach')),
 ('amplification_rate','consideration','count', T('shares'), T('posts')),
 ('follower_growth_rate','awareness','ratio', T('follower_gains'), S('followers')),
 ('conversion_rate','decision','ratio', T('conversions'), T('clicks')),
 ('lead_conversion_rate','decision','ratio', T('deals_won', HS), T('leads', HS)),
 ('roi','decision','ratio', SUBx(T('revenue'), T('spend')), T('spend')),
 ('roas','decision','ratio', T('revenue'), T('spend')),
 ('bounce_rate','consideration','ratio', SUBx(T('sessions'), T('engaged_sessions')), T('sessions')),
 ('avg_session_duration','consideration','seconds', T('session_duration_seconds'), T('sessions')),
 ('returning_visitor_rate','consideration','ratio', T('returning_users'), T('users')),
 ('social_traffic_share','awareness','ratio', T('sessions', SOCIAL), T('sessions')),
 ('brand_awareness','awareness','count', sum_of('mentions','shares','link_clicks','impressions'), None),
 ('email_open_rate','consideration','ratio', T('emails_opened'), T('emails_delivered')),
 ('email_click_rate','consideration','ratio', T('emails_clicked'), T('emails_delivered')),
 ('form_conversion_rate','consideration','ratio', T('form_submissions'), T('page_views')),
 ('nps','loyalty','score', K(SUBx(T('nps_promoters'), T('nps_detractors')), 100), sum_of('nps_promoters','nps_passives','nps_detractors')),
 ('csat','loyalty','score', K(T('csat_satisfied'), 100), T('survey_responses')),
 ('invite_accept_rate','consideration','ratio', T('invites_accepted'), T('invites_sent')),
 ('reply_rate','consideration','ratio', T('replies'), T('invites_accepted')),
 ('interest_rate','decision','ratio', T('interested'), T('replies')),
]
if RATES:
    KPIS.append(('blended_cpl','decision','currency', T('spend', LI_FB), T('leads', HS)))

def ekey(r): return (r['platform'], r['source'], r['account'], r['level'], r['entity'])
def akey(e): return e[:3]
ENT = sorted({ekey(r) for r in rows})

def matches(r, flt):
    if flt is None: return True
    k, vals = flt
    v = r['channel'] if k == 'channel' else r[k]
    return v in vals

# entity-day values of a term: {(entity, date): [(value, currency)]}; one row per entity-day here
def base_term(m, flt):
    out = {}
    for r in rows:
        if r['metric'] == m and matches(r, flt):
            out.setdefault((ekey(r), r['date']), []).append((r['value'], r['currency'] or None))
    return {k: v[0] for k, v in out.items()}

MISSING, NULL = 'missing', 'null'

def coalesce_term(alts):
    days = set()
    def tm(e, acc):
        if e[0] == 't': acc.append(e)
        elif e[0] in '+-': tm(e[1], acc); tm(e[2], acc)
        elif e[0] == 'k': tm(e[1], acc)
    bases = []
    for a in alts: tm(a, bases)
    vals = {b: base_term(b[1], b[2]) for b in bases}
    for v in vals.values(): days |= set(v)
    out = {}
    for k in days:
        get = lambda t: vals[t][k][0] if k in vals[t] else MISSING
        for a in alts:
            v = ev(a, get)
            if v != MISSING:
                out[k] = (v, None); break
    return out

TERMS = {}
def term_values(t):
    key = repr(t)
    if key not in TERMS:
        TERMS[key] = coalesce_term(t[1]) if t[0] == 'c' else base_term(t[1], t[2])
    return TERMS[key]

def additivity(t): return 'sum' if t[0] == 'c' else ADD.get(t[1], 'sum')

def contributions(t, ents, dates, rollup):
    """(entity, date, value, currency) of term t for entities `ents` on `dates`; with rollup,
    per account and day only the coarsest level."""
    vals = term_values(t)
    out = [(e, d, v, c) for (e, d), (v, c) in vals.items() if e in ents and d in dates]
    if rollup:
        best = {}
        for e, d, v, c in out:
            k = (akey(e), d)
            r = level_rank(e[3])
            if k not in best or r < best[k]: best[k] = r
        out = [x for x in out if level_rank(x[0][3]) == best[(akey(x[0]), x[1])]]
    return out

def conv(v, c):
    if RATES and c in RATES[1]: return rnd(v * RATES[1][c]), RATES[0]
    return v, c

def period_dates(grain, start):
    if grain == 'day': end = start
    elif grain == 'week': end = start + dt.timedelta(days=6)
    else:
        nm = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        end = nm - dt.timedelta(days=1)
    n = (end - start).days + 1
    return end, {start + dt.timedelta(days=i) for i in range(n)}

def terms_of(expr, acc):
    if expr is None: return
    if expr[0] in ('t', 'c'): acc.append(expr)
    elif expr[0] in '+-': terms_of(expr[1], acc); terms_of(expr[2], acc)
    elif expr[0] == 'k': terms_of(expr[1], acc)

def tkey(t): return repr(t[:3]) if t[0] == 't' else repr(t)

def evaluate(kpi, grain, start, parts, rollup):
    """parts: list of entity sets (one per unit). Returns [(currency, num, den, value)]."""
    name, stage, unit, num, den = kpi
    end, dates = period_dates(grain, start)
    before = {start - dt.timedelta(days=1)}
    ts = []; terms_of(num, ts); terms_of(den, ts)
    # per unit, per term: contributions in period (converted currency)
    unit_contrib = []
    for ents in parts:
        d = {}
        for t in ts:
            k = tkey(t)
            cs = [(e, dd, *conv(v, c)) for e, dd, v, c in contributions(t, ents, dates, rollup)]
            st = [(e, dd, *conv(v, c)) for e, dd, v, c in contributions(t, ents, before, rollup)] if t[0] == 't' and t[3] else []
            d[k] = (cs, st)
        unit_contrib.append(d)
    if not any(d[tkey(t)][0] or d[tkey(t)][1] for d in unit_contrib for t in ts): return []
    sets = [ {c for t in ts for (_, _, _, c) in d[tkey(t)][0] if c} for d in unit_contrib ]
    allc = sorted(set().union(*sets))
    if len(allc) <= 1:
        groups = [(allc[0] if allc else None, list(range(len(parts))))]
    else:
        groups = [(c, [i for i, s in enumerate(sets) if s == {c}]) for c in allc]
        groups = [(c, g) for c, g in groups if g]
    out = []
    for cur, idx in groups:
        def get(t):
            k = tkey(t)
            cs = [x for i in idx for x in unit_contrib[i][k][0] if x[3] is None or x[3] == cur]
            st = [x for i in idx for x in unit_contrib[i][k][1]]
            add = additivity(t)
            if t[0] == 't' and t[3]:
                if st: return sum(x[2] for x in st)
                return NULL if cs else MISSING
            if not cs: return MISSING
            if add == 'sum': return sum(x[2] for x in cs)
            if add == 'unique':
                return cs[0][2] if grain == 'day' and len(cs) == 1 else NULL
            last = max(x[1] for x in cs)
            return sum(x[2] for x in cs if x[1] == last)
        n = ev(num, get) if num[0] != 'c' else get(num)
        if n == MISSING: continue
        if den is not None:
            dv = ev(den, get) if den[0] != 'c' else get(den)
            if dv == MISSING: continue
        else:
            dv = None
        nv = n if isinstance(n, D) else None
        dvv = dv if isinstance(dv, D) else None
        if den is None: val = nv
        elif nv is not None and dvv is not None and dvv != 0: val = rnd(nv / dvv)
        else: val = None
        money = any(x[3] for i in idx for t in ts for x in unit_contrib[i][tkey(t)][0])
        out.append((cur if money else None, nv, dvv, val))
    return out

# A coalesce() is a term of its own (computed per entity and day above).
def ev(expr, get):
    if expr[0] == 'c': return get(expr)
    kind = expr[0]
    if kind == 't': return get(expr)
    if kind == 'k':
        v = ev(expr[1], get)
        return v * expr[2] if isinstance(v, D) else v
    a, b = ev(expr[1], get), ev(expr[2], get)
    if kind == '-':
        if a == MISSING or b == MISSING: return MISSING
        if a == NULL or b == NULL: return NULL
        return a - b
    if a == MISSING and b == MISSING: return MISSING
    if a == MISSING: return b
    if b == MISSING: return a
    if a == NULL or b == NULL: return NULL
    return a + b

PERIODS = [('day', day('2026-09-30')), ('day', day('2026-10-01')), ('week', day('2026-09-28')),
           ('month', day('2026-09-01')), ('month', day('2026-10-01'))]
ACCTS = sorted({akey(e) for e in ENT})
PLATS = sorted({e[0] for e in ENT})
lines = []
for kpi in KPIS:
    name, stage, unit = kpi[:3]
    for grain, start in PERIODS:
        insts = []
        for e in ENT: insts.append(('entity', '%s:%s/%s/%s/%s' % e, [{e}], False))
        for a in ACCTS: insts.append(('account', '%s:%s/%s' % a, [{e for e in ENT if akey(e) == a}], True))
        for p in PLATS: insts.append(('platform', p, [{e for e in ENT if akey(e) == a} for a in ACCTS if a[0] == p], True))
        insts.append(('all', '*', [{e for e in ENT if akey(e) == a} for a in ACCTS], True))
        for scope, who, parts, rollup in insts:
            for cur, n, d_, v in evaluate(kpi, grain, start, parts, rollup):
                lines.append('%s %s %s %s %s %s = %s (%s / %s) %s %s' % (name, grain, start, scope, who, cur or '-', fmt(v), fmt(n), fmt(d_), unit, stage))
lines.sort()
print('\n'.join(lines))
