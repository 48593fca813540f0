# spamlens for SpamAssassin: sends each message to `spamlens serve`'s POST /v1/scan once and lets
# rules test what spamlens found (see spamlens.cf for the rules and their scores).
#
#   check_spamlens_image(LABEL, MIN_P)  an image spamlens labels LABEL (spam or ad) with
#                                       p(LABEL) >= MIN_P
#   check_spamlens_text()               the CLA_ANN text filter (which also reads the words drawn
#                                       in the images) says spam
#
# Mail must keep flowing: when spamlens is down, slow or answers an error, the plug-in logs it
# (spamassassin -D spamlens) and no spamlens rule hits; the message is scored by the other rules.
# Only core Perl modules are used (HTTP::Tiny, JSON::PP).

package Mail::SpamAssassin::Plugin::Spamlens;

use strict;
use warnings;

use HTTP::Tiny;
use JSON::PP ();
use Mail::SpamAssassin::Plugin;
use Mail::SpamAssassin::Logger;

our @ISA = qw(Mail::SpamAssassin::Plugin);
our $VERSION = '0.1.0';

sub new {
    my ($class, $mailsa) = @_;
    my $self = $class->SUPER::new($mailsa);
    bless($self, $class);
    $self->register_eval_rule('check_spamlens_image', $Mail::SpamAssassin::Conf::TYPE_HEAD_EVALS);
    $self->register_eval_rule('check_spamlens_text', $Mail::SpamAssassin::Conf::TYPE_HEAD_EVALS);
    $self->set_config($mailsa->{conf});
    return $self;
}

sub set_config {
    my ($self, $conf) = @_;
    my @cmds = (
        # spamlens serve's scan endpoint.
        { setting => 'spamlens_url', default => 'http://127.0.0.1:8080/v1/scan',
          type => $Mail::SpamAssassin::Conf::CONF_TYPE_STRING },
        # Bearer token (spamlens serve --token-file), empty when the server needs none.
        { setting => 'spamlens_token', default => '',
          type => $Mail::SpamAssassin::Conf::CONF_TYPE_STRING },
        # Seconds to wait for the answer (spamlens reads the text in every image).
        { setting => 'spamlens_timeout', default => 15,
          type => $Mail::SpamAssassin::Conf::CONF_TYPE_NUMERIC },
        # Larger messages are not sent (bytes).
        { setting => 'spamlens_max_size', default => 20 * 1024 * 1024,
          type => $Mail::SpamAssassin::Conf::CONF_TYPE_NUMERIC },
    );
    $conf->{parser}->register_commands(\@cmds);
}

# spamlens' answer for this message: asked once, kept on the message's status; {} when there is none.
sub _scan {
    my ($self, $pms) = @_;
    return $pms->{spamlens_scan} if defined $pms->{spamlens_scan};
    $pms->{spamlens_scan} = {};
    my $conf = $pms->{conf};
    my $message = $pms->{msg}->get_pristine();
    if (length($message) > $conf->{spamlens_max_size}) {
        dbg("spamlens: message of %d bytes is over spamlens_max_size: not sent", length($message));
        return $pms->{spamlens_scan};
    }
    my %headers = ('Content-Type' => 'message/rfc822');
    $headers{'Authorization'} = "Bearer $conf->{spamlens_token}" if $conf->{spamlens_token} ne '';
    my $name = $pms->get('Message-Id') || 'message';
    $name =~ s/[^\w.\-@]/_/g;
    my $url = $conf->{spamlens_url};
    $url .= ($url =~ /\?/ ? '&' : '?') . "name=$name";
    my $http = HTTP::Tiny->new(timeout => $conf->{spamlens_timeout}, agent => "spamlens-spamassassin/$VERSION");
    my $response = $http->post($url, { headers => \%headers, content => $message });
    if (!$response->{success}) {
        my $reason = $response->{status} == 599 ? $response->{content} : "$response->{status} $response->{reason}";
        $reason =~ s/\s+/ /g;
        info("spamlens: $conf->{spamlens_url} answered " . substr($reason, 0, 300) . ": no spamlens rules");
        return $pms->{spamlens_scan};
    }
    my $scan = eval { JSON::PP::decode_json($response->{content}) };
    if (ref($scan) ne 'HASH') {
        info("spamlens: the answer is not a JSON object: no spamlens rules");
        return $pms->{spamlens_scan};
    }
    dbg("spamlens: verdict %s (%s)", $scan->{verdict}{label} // '?', $scan->{verdict}{decided_by} // '?');
    $pms->{spamlens_scan} = $scan;
    return $scan;
}

# True when an image is labelled $label (spam or ad) with p($label) >= $min_p.
sub check_spamlens_image {
    my ($self, $pms, $label, $min_p) = @_;
    $min_p = 0 unless defined $min_p;
    my @hits;
    for my $image (@{ $self->_scan($pms)->{images} || [] }) {
        next unless ($image->{label} // '') eq $label;
        my $p = $image->{probabilities}{$label} // 0;
        push @hits, sprintf('%s:%.3f', $image->{name} // 'image', $p) if $p >= $min_p;
    }
    return 0 unless @hits;
    $pms->test_log(join(', ', @hits));
    return 1;
}

# True when the text filter says spam.
sub check_spamlens_text {
    my ($self, $pms) = @_;
    my $text = $self->_scan($pms)->{text};
    return 0 unless ref($text) eq 'HASH' && $text->{is_spam};
    $pms->test_log(sprintf('score %.3f > %.3f', $text->{score} // 0, $text->{threshold} // 0));
    return 1;
}

1;
