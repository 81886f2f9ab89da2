"""The selection and edit rules of a montage, with their defaults written once.

`RULES` holds every default the selection and the edit use: the cores' rule objects
(`selection.ranking.RankingRules`, `media.windows.WindowRules`, `media.timeline.TimelineRules`) and the
run config of the two assets that expose them (`selected_clips`, `scored_highlights`) all default from
it, so a default changes here and nowhere else. The field names are the run config's. The target length
is the one rule a deployment sets from its environment (`WEEKLY_MONTAGE_DURATION`, in `settings.py`,
whose default is `RULES.target_duration_s`).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MontageRules:
    # Selection (`selected_clips`): which clips are usable and how the pool is ranked.
    min_clip_duration_s: float = 3.0
    newest_max_clips: int = 15  # the seed's "newest" policy, kept for comparison
    weight_job_score: float = 0.5
    weight_engagement: float = 0.35
    weight_recency: float = 0.15
    # The edit (`scored_highlights`): how long, how many, how varied.
    target_duration_s: float = 180.0
    min_clips: int = 10
    max_clips: int = 15
    per_user_cap: int = 2
    # Each clip of a game already in the cut multiplies the next one's score by (1 - penalty): a close
    # call goes to another game, a clearly better moment still wins.
    game_diversity_penalty: float = 0.1
    # And no game fills more than this share of the cut's clips while another game has one to give.
    max_game_share: float = 0.5
    # The least a clip's densest 12 s may score to go in while the cut has enough: on the excitement scale
    # (0 walking, ~0.3 steady hits, ~0.7 the second of a kill) a lone kill averages ~0.14 over 12 s and the
    # kit's walking and exploring clips stay under 0.07. (0.15 dropped clips with one kill.)
    min_score: float = 0.08
    # Each clip's window.
    min_window_s: float = 6.0
    max_window_s: float = 20.0
    preferred_window_s: float = 12.0  # 15 clips of 12 s fill a 180 s montage
    lead_in_s: float = 2.0
    prior_weight: float = 0.2  # how far the selection prior may move a content score (±10 % at 0.2)
    # The beat grid and transitions.
    tempo_min_bpm: int = 120
    tempo_max_bpm: int = 140
    intro_beats: int = 8
    dissolve_s: float = 0.5


RULES = MontageRules()
