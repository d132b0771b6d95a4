"""`rempart switch`: cut exactly one account, token, organisation, insurer's checks or channel — and restore it.

    rempart switch off --reason "…" --account staff@shop.test [--channel portal_rights] [--domain OPTI]
    rempart switch off --reason "…" --token 1a2b3c4d
    rempart switch off --reason "…" --organisation 42
    rempart switch off --reason "…" --insurer 123456789
    rempart switch off --reason "…" --channel api_rights [--channel portal_rights]
    rempart switch on 12 [13 …]
    rempart switch list [--all]

A change is effective in every server process within a few seconds (rempart.surveillance.switches).
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from rempart.accounts.events import record_event
from rempart.accounts.models import ApiToken, Organisation, Role, User
from rempart.registry.models import CareDomain, Insurer
from rempart.surveillance import switches
from rempart.surveillance.models import Switch

CHANNELS = [Switch.Channel.PORTAL_RIGHTS.value, Switch.Channel.API_RIGHTS.value]
OPERATOR_ROLES = {Role.SECURITY, Role.ADMIN}


def describe(switch: Switch) -> str:
    """What a switch cuts, in one line (no secret: a token is named by its prefix)."""
    if switch.target == Switch.Target.ACCOUNT:
        what = f"account {switch.user.email}" if switch.user else "account ?"
    elif switch.target == Switch.Target.TOKEN:
        what = f"token rmp_{switch.token.prefix}… ({switch.token.name})" if switch.token else "token ?"
    elif switch.target == Switch.Target.ORGANISATION:
        what = (
            f"organisation #{switch.organisation_id} {switch.organisation.name}"
            if switch.organisation
            else "organisation ?"
        )
    elif switch.target == Switch.Target.INSURER:
        what = (
            f"checks for insurer {switch.insurer.amc_number} {switch.insurer.name}"
            if switch.insurer
            else "insurer ?"
        )
    else:
        what = "everyone"
    channel = switch.channel or "every channel"
    domain = switch.domain or "every care domain"
    return f"{what} · {channel} · {domain}"


def _event_details(switch: Switch, by: User | None) -> dict:
    return {**switches.event_details(switch), "by": by.email if by else "ligne de commande", "via": "cli"}


class Command(BaseCommand):
    help = (
        "Kill switches. `off --reason R` with one of --account EMAIL, --token PREFIX, --organisation ID, "
        "--insurer AMC, or only --channel (portal_rights, api_rights: that channel for everyone); --channel "
        "narrows a target to a channel (repeatable), --domain to one care domain. `on ID…` switches back on; "
        "`list [--all]` shows what is off (--all: with the history)."
    )

    def add_arguments(self, parser):
        actions = parser.add_subparsers(dest="action", required=True, metavar="{off,on,list}")
        off = actions.add_parser("off", help="switch something off, with a reason")
        off.add_argument("--reason", required=True, help="why (kept with the switch, shown to the team)")
        target = off.add_mutually_exclusive_group()
        target.add_argument("--account", metavar="EMAIL", help="one account (its portal checks)")
        target.add_argument("--token", metavar="PREFIX", help="one API token, by its prefix (rmp_PREFIX_…)")
        target.add_argument("--organisation", metavar="ID", help="one organisation, by id (or exact name)")
        target.add_argument("--insurer", metavar="AMC", help="every check concerning this insurer's cards")
        off.add_argument(
            "--channel",
            action="append",
            default=[],
            choices=CHANNELS,
            help="only this channel (repeatable); alone: the channel for everyone",
        )
        off.add_argument("--domain", help="only this care domain (e.g. OPTI)")
        off.add_argument("--by", metavar="EMAIL", help="the operator security account doing it (recorded)")
        on = actions.add_parser("on", help="switch back on")
        on.add_argument(
            "ids", nargs="+", type=int, metavar="ID", help="switch id(s), from `rempart switch list`"
        )
        on.add_argument("--by", metavar="EMAIL", help="the operator security account doing it (recorded)")
        listing = actions.add_parser("list", help="what is off, and why")
        listing.add_argument("--all", action="store_true", help="also the switches already back on")

    def handle(self, *args, action, **options):
        if action == "off":
            self._off(options)
        elif action == "on":
            self._on(options["ids"], self._operator(options.get("by")))
        else:
            self._list(options["all"])

    # --- off -------------------------------------------------------------------------------------------

    def _off(self, options) -> None:
        reason = (options["reason"] or "").strip()
        if not reason:
            raise CommandError("--reason: say why (it is kept with the switch and shown to the team)")
        if len(reason) > 300:
            raise CommandError("--reason: 300 characters at most")
        by = self._operator(options.get("by"))
        domain = self._domain(options.get("domain"))
        fields = self._target(options)
        channels = list(dict.fromkeys(options["channel"]))  # keep order, drop repeats
        if fields["target"] == Switch.Target.CHANNEL and not channels:
            raise CommandError(
                "say what to cut: --account, --token, --organisation, --insurer, or --channel "
                f"({' or '.join(CHANNELS)}) for everyone"
            )
        created = []
        with transaction.atomic():
            for channel in channels or [""]:
                existing = Switch.objects.filter(on_at__isnull=True, channel=channel, domain=domain, **fields)
                if existing.exists():
                    self.stdout.write(f"Already off: #{existing.first().pk} {describe(existing.first())}")
                    continue
                switch = switches.switch_off(reason=reason, by=by, channel=channel, domain=domain, **fields)
                record_event("switch.off", **switches.event_owner(switch), **_event_details(switch, by))
                created.append(switch)
        for switch in created:
            self.stdout.write(self.style.SUCCESS(f"Switch #{switch.pk} off: {describe(switch)}"))
        if created:
            self.stdout.write(
                f"Effective in every server process within {switches.REFRESH_SECONDS:g} s. "
                f"Switch back on with: rempart switch on {' '.join(str(s.pk) for s in created)}"
            )

    def _target(self, options) -> dict:
        """The switch's target fields."""
        if options.get("account"):
            email = options["account"].strip()
            user = User.objects.filter(email__iexact=email).first()
            if user is None:
                raise CommandError(f"--account: no account with the email {email}")
            return {"target": Switch.Target.ACCOUNT, "user": user}
        if options.get("token"):
            prefix = options["token"].strip().removeprefix("rmp_").split("_")[0]
            token = ApiToken.objects.filter(prefix=prefix).select_related("organisation").first()
            if token is None or not prefix:
                raise CommandError(f"--token: no API token with the prefix {prefix or '(empty)'}")
            return {"target": Switch.Target.TOKEN, "token": token}
        if options.get("organisation"):
            value = options["organisation"].strip()
            found = Organisation.objects.filter(pk=int(value)) if value.isdigit() else None
            if found is None or not found.exists():
                found = Organisation.objects.filter(name=value)
            if found.count() != 1:
                raise CommandError(
                    f"--organisation: no organisation with the id {value}"
                    if found.count() == 0
                    else f"--organisation: several organisations are named {value}: give the id"
                )
            organisation = found.get()
            if organisation.kind != Organisation.Kind.PROFESSIONAL:
                raise CommandError(
                    f"--organisation: {organisation.name} is not a professional organisation (only those check "
                    "rights); for an insurer's checks use --insurer AMC"
                )
            return {"target": Switch.Target.ORGANISATION, "organisation": organisation}
        if options.get("insurer"):
            amc = options["insurer"].strip()
            insurer = Insurer.objects.filter(amc_number=amc).first()
            if insurer is None:
                raise CommandError(f"--insurer: no insurer with the AMC number {amc}")
            return {"target": Switch.Target.INSURER, "insurer": insurer}
        return {"target": Switch.Target.CHANNEL}

    def _domain(self, value: str | None) -> str:
        if not value:
            return ""
        domain = value.strip().upper()
        if domain not in CareDomain.values:
            raise CommandError(
                f"--domain: unknown care domain {value} (one of {', '.join(CareDomain.values)})"
            )
        return domain

    def _operator(self, email: str | None) -> User | None:
        if not email:
            return None
        user = User.objects.filter(email__iexact=email.strip()).first()
        if user is None:
            raise CommandError(f"--by: no account with the email {email}")
        membership = user.membership
        if (
            membership is None
            or membership.organisation.kind != Organisation.Kind.OPERATOR
            or membership.role not in OPERATOR_ROLES
        ):
            raise CommandError(f"--by: {user.email} is not operator security staff")
        return user

    # --- on --------------------------------------------------------------------------------------------

    def _on(self, ids: list[int], by: User | None) -> None:
        found = {
            s.pk: s
            for s in Switch.objects.filter(pk__in=ids).select_related(
                "user", "token", "organisation", "insurer"
            )
        }
        unknown = [str(i) for i in ids if i not in found]
        if unknown:
            raise CommandError(f"no switch #{', #'.join(unknown)} (see `rempart switch list --all`)")
        already = [
            f"#{i} (on since {timezone.localtime(found[i].on_at):%Y-%m-%d %H:%M})"
            for i in ids
            if found[i].on_at
        ]
        if already:
            raise CommandError(f"already back on: {', '.join(already)}")
        for pk in dict.fromkeys(ids):
            switch = found[pk]
            switches.switch_on(switch, by=by)
            record_event(
                "switch.on",
                **switches.event_owner(switch),
                **_event_details(switch, by),
                by_system=switch.by_system,
            )
            note = " (it had been switched off by the system)" if switch.by_system else ""
            self.stdout.write(self.style.SUCCESS(f"Switch #{switch.pk} back on: {describe(switch)}{note}"))

    # --- list ------------------------------------------------------------------------------------------

    def _list(self, everything: bool) -> None:
        rows = Switch.objects.select_related("user", "token", "organisation", "insurer", "off_by", "on_by")
        if not everything:
            rows = rows.filter(on_at__isnull=True)
        rows = list(rows.order_by("-off_at", "-pk"))
        if not rows:
            self.stdout.write("Nothing is switched off." if not everything else "No switch yet.")
            return
        for switch in rows:
            who = "system" if switch.by_system else (switch.off_by.email if switch.off_by else "command line")
            state = "OFF" if switch.active else f"on since {timezone.localtime(switch.on_at):%Y-%m-%d %H:%M}"
            self.stdout.write(
                f"#{switch.pk:<5} {state:<22} {describe(switch)}\n"
                f"       off {timezone.localtime(switch.off_at):%Y-%m-%d %H:%M} by {who}: {switch.reason}"
            )
