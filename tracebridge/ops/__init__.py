"""Operations: the daily shadow cycle, the 3-day review, canary routing with fail-open and gates,\npromotion with rollback, and the weekly/monthly cadence.\n"""
