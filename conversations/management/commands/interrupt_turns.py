from django.core.management.base import BaseCommand

from conversations.services import turns_interrupt_running


class Command(BaseCommand):
    help = ("Mark replies left running by a stopped server as failed (retryable). Run it before "
            "starting a single server; with several server processes, only when all are down.")

    def handle(self, *args, **options) -> None:
        count = turns_interrupt_running()
        if count:
            self.stdout.write(f"Marked {count} interrupted repl{'y' if count == 1 else 'ies'} "
                              "as failed.")
